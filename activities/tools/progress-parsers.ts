import { type ProcessProgress, progressPatternProblem } from '../../common/stages.js';
import type { OutputParser, ToolProgress } from './external-tool.js';
import { gltfpackParser } from './gltfpack-parser.js';

/** "42%", "42.5 %": progress out of 100. */
const percentParser: OutputParser = (line) => {
  const m = /(\d{1,3}(?:\.\d+)?)\s*%/.exec(line);
  if (!m) return null;
  const percent = Number(m[1]);
  return percent <= 100 ? { done: percent, total: 100, message: line.trim() } : null;
};

/** "3/12", "3 of 12", "Frame 3 / 12": done out of total. */
const fractionParser: OutputParser = (line) => {
  const m = /(\d+)\s*(?:\/|\bof\b)\s*(\d+)/.exec(line);
  if (!m) return null;
  const done = Number(m[1]);
  const total = Number(m[2]);
  return total > 0 && done <= total ? { done, total, message: line.trim() } : null;
};

/** The parsers a process stage may name (common/stages.ts ProgressParserName). */
export const PROGRESS_PARSERS = { percent: percentParser, fraction: fractionParser, gltfpack: gltfpackParser } as const;

/**
 * A studio's own pattern: a regular expression with named groups `done` and `total` (or a fixed `total`),
 * or `percent`. Throws for a pattern that is not a valid expression or has neither group.
 */
export function patternParser(pattern: string, fixedTotal?: number): OutputParser {
  const problem = progressPatternProblem(pattern, fixedTotal);
  if (problem) throw new Error(`the progress pattern ${pattern} ${problem}`);
  const expression = new RegExp(pattern);
  return (line): ToolProgress | null => {
    const found = expression.exec(line)?.groups;
    if (!found) return null;
    if (found.percent !== undefined) return { done: Math.min(100, Number(found.percent)), total: 100, message: line.trim() };
    const total = found.total !== undefined ? Number(found.total) : fixedTotal!;
    const done = Number(found.done);
    return Number.isFinite(done) && total > 0 ? { done: Math.min(done, total), total, message: line.trim() } : null;
  };
}

/** The parser a process stage's progress spec names (none: the stage reports only its start and end). */
export function parserFor(progress: ProcessProgress | undefined): OutputParser | undefined {
  if (!progress) return undefined;
  return 'parser' in progress ? PROGRESS_PARSERS[progress.parser] : patternParser(progress.pattern, progress.total);
}
