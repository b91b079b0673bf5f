import type { OutputParser } from './external-tool.js';

/**
 * gltfpack -v prints what it read, then what it wrote, rather than percentages; each maps to a step of
 * three: read (input: …), processed (first output: …), written (output: JSON …, output: buffers: …).
 */
export const gltfpackParser: OutputParser = (line) => {
  if (line.startsWith('input:')) return { done: 1, total: 3, message: `Read: ${line.slice('input:'.length).trim()}` };
  if (/^output: (JSON \d+ bytes|buffers:)/.test(line))
    return { done: 3, total: 3, message: `Written: ${line.slice('output:'.length).trim()}` };
  if (line.startsWith('output:')) return { done: 2, total: 3, message: `Processed: ${line.slice('output:'.length).trim()}` };
  return null;
};
