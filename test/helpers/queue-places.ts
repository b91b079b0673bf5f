/**
 * The places in the HPC line a job's card showed, read from the texts it showed in turn ('' while it
 * showed none): one list of "jobs ahead" per wait (each stage of a job waits in turn), "yours is next"
 * as 0, a text that names no number as NaN.
 */
export function placesPerWait(texts: readonly string[]): number[][] {
  const aheadOf = (text: string) => (text.includes('yours is next') ? 0 : Number(/: (\d+) jobs? ahead/.exec(text)?.[1] ?? Number.NaN));
  const waits: number[][] = [[]];
  for (const text of texts) {
    if (text) waits.at(-1)!.push(aheadOf(text));
    else if (waits.at(-1)!.length > 0) waits.push([]);
  }
  return waits;
}
