import { readFileSync } from 'node:fs';
import { z } from 'zod';

const MeshoptView = z.looseObject({ byteLength: z.number().int() });

const GlbJson = z.looseObject({
  images: z.array(z.looseObject({ bufferView: z.number().int().optional() })).optional(),
  bufferViews: z
    .array(
      z.looseObject({
        byteLength: z.number().int(),
        extensions: z
          .looseObject({ EXT_meshopt_compression: MeshoptView.optional(), KHR_meshopt_compression: MeshoptView.optional() })
          .optional(),
      }),
    )
    .optional(),
  accessors: z.array(z.looseObject({ bufferView: z.number().int().optional(), count: z.number().int() })).optional(),
  meshes: z
    .array(
      z.looseObject({
        primitives: z.array(
          z.looseObject({
            attributes: z.record(z.string(), z.number().int()),
            indices: z.number().int().optional(),
            mode: z.number().int().optional(),
          }),
        ),
      }),
    )
    .optional(),
});
type GlbJson = z.infer<typeof GlbJson>;

function readGlbJson(file: string): { json: GlbJson; jsonBytes: number } {
  const glb = readFileSync(file);
  if (glb.readUInt32LE(0) !== 0x46546c67) throw new Error(`${file} is not a GLB`);
  const jsonBytes = glb.readUInt32LE(12);
  return { json: GlbJson.parse(JSON.parse(glb.subarray(20, 20 + jsonBytes).toString('utf8'))), jsonBytes };
}

/**
 * Bytes of a GLB's embedded images (their buffer views), read from the JSON chunk alone, so a
 * meshopt-compressed file needs no decoder. Lets geometry be compared without the textures.
 */
export function glbImageBytes(file: string): number {
  const { json } = readGlbJson(file);
  const views = json.bufferViews ?? [];
  return (json.images ?? []).reduce(
    (sum, image) => sum + (image.bufferView === undefined ? 0 : (views[image.bufferView]?.byteLength ?? 0)),
    0,
  );
}

/** Where a GLB's geometry bytes go: what benchmark 7 compares with gltfpack's, level by level. */
export interface GlbGeometry {
  /** Triangles drawn (indexed or not) over all triangle-list primitives. */
  triangles: number;
  jsonBytes: number;
  /** Stored bytes (compressed, when meshopt-compressed) of the buffer views, by what uses them: "POSITION", "indices"… */
  streams: Record<string, number>;
}

/** The geometry breakdown of a GLB, from its JSON chunk alone (no decoder needed). */
export function glbGeometry(file: string): GlbGeometry {
  const { json, jsonBytes } = readGlbJson(file);
  const accessors = json.accessors ?? [];
  const users = new Map<number, Set<string>>();
  let triangles = 0;
  for (const prim of (json.meshes ?? []).flatMap((m) => m.primitives)) {
    const uses = Object.entries(prim.attributes);
    if (prim.indices !== undefined) uses.push(['indices', prim.indices]);
    for (const [semantic, index] of uses) {
      const view = accessors[index]?.bufferView;
      if (view !== undefined) users.set(view, (users.get(view) ?? new Set()).add(semantic));
    }
    const elements = accessors[prim.indices ?? prim.attributes.POSITION ?? -1]?.count ?? 0;
    if ((prim.mode ?? 4) === 4) triangles += Math.floor(elements / 3);
  }
  const images = new Set((json.images ?? []).map((i) => i.bufferView));
  const streams: Record<string, number> = {};
  for (const [i, view] of (json.bufferViews ?? []).entries()) {
    if (images.has(i)) continue;
    const meshopt = view.extensions?.EXT_meshopt_compression ?? view.extensions?.KHR_meshopt_compression;
    const name = [...(users.get(i) ?? ['other'])].sort().join('+');
    streams[name] = (streams[name] ?? 0) + (meshopt ? meshopt.byteLength : view.byteLength);
  }
  return { triangles, jsonBytes, streams };
}
