/**
 * Node flags the API process starts with, wherever it is started: `npm start` (scripts/start.ts), the
 * `api` npm script, the image and docker-compose.yml (test/deploy/compose.test.ts keeps those equal to
 * this), and the benchmarks.
 *
 * `--max-semi-space-size=16`: Node 20's default. Node 24's V8 sizes the young generation by the
 * machine's memory, and a burst of socket connects fills it and leaves it committed: on 24 GiB the API's
 * RSS per socket at 1,000 sockets read 41–47 KB with Node 24's default against 15–22 KB with this, and
 * 19 against 14–15 KB at 10,000 (benchmark 3, BENCHMARKS.md "Make it fast 11"), at the same CPU and
 * delivery latency. Smaller semi-spaces (4 MB) saved little more and cost the relay a fifth more CPU.
 */
export const API_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16'];
