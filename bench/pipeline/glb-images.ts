import { readFileSync } from 'node:fs';
import { z } from 'zod';

const GlbJson = z.looseObject({
  images: z.array(z.looseObject({ bufferView: z.number().int().optional() })).optional(),
  bufferViews: z.array(z.looseObject({ byteLength: z.number().int() })).optional(),
});

/**
 * Bytes of a GLB's embedded images (their buffer views), read from the JSON chunk alone, so a
 * meshopt-compressed file needs no decoder. Lets geometry be compared without the textures.
 */
export function glbImageBytes(file: string): number {
  const glb = readFileSync(file);
  if (glb.readUInt32LE(0) !== 0x46546c67) throw new Error(`${file} is not a GLB`);
  const jsonLength = glb.readUInt32LE(12);
  const json = GlbJson.parse(JSON.parse(glb.subarray(20, 20 + jsonLength).toString('utf8')));
  const views = json.bufferViews ?? [];
  return (json.images ?? []).reduce(
    (sum, image) => sum + (image.bufferView === undefined ? 0 : (views[image.bufferView]?.byteLength ?? 0)),
    0,
  );
}
