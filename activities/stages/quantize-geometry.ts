import {
  type Accessor,
  AnimationChannel,
  type Document,
  type Material,
  Mesh,
  Node,
  Primitive,
  PropertyType,
  type TextureInfo,
  type Transform,
} from '@gltf-transform/core';
import { KHRTextureTransform, type Transform as TextureTransform } from '@gltf-transform/extensions';
import { createTransform, listTextureInfoByMaterial, quantize } from '@gltf-transform/functions';

/** glTF componentType codes (Accessor.ComponentType is typed as a plain record, so its members may be undefined). */
const GL_SHORT = 5122;
const GL_FLOAT = 5126;

/**
 * Quantisation precision, in bits per component. Positions and texture coordinates use gltfpack's defaults
 * (-vp 14, -vt 12): 14 bits is a step of 1/16382 of the mesh's largest extent (0.06 mm on a 1 m asset) and
 * 12 bits at least 4095 steps per UV unit (a quarter texel at 1024 px). Normals are left to meshopt's
 * octahedral filter at packaging (8 bits, as gltfpack -vn 8) when the output is meshopt-compressed, so they
 * are quantised once; otherwise glTF-Transform's default 10 bits applies, as before.
 */
export const QUANTIZATION_BITS = { position: 14, texcoord: 12, normal: 10, color: 8, weight: 8, generic: 12 } as const;

/**
 * Vertex quantisation (KHR_mesh_quantization) laid out for meshopt's vertex codec, as gltfpack lays it out.
 *
 * glTF-Transform's quantize() stores a b-bit value in a 16-bit normalized integer by repeating its top bits
 * in the unused low bits, so that the largest value decodes to exactly 1. Those repeated bits change with
 * every vertex, and meshopt's byte-wise delta coding pays for them: on a generated 20k-triangle terrain,
 * positions took 33,375 bytes instead of 28,308 and UVs 17,526 instead of 14,318 (gltfpack: 28,312 and
 * 14,318). quantize() also leaves UVs outside [0,1] as floats (DamagedHelmet's v runs 1.0..2.0: 73.5 kB of
 * UVs against gltfpack's 34 kB). So, after quantize():
 * - positions are stored as the grid integers (non-normalized SHORT, allowed by KHR_mesh_quantization) and the
 *   mesh's nodes get the 1/(2^(b-1)-1) factor on top of quantize()'s own offset and scale;
 * - UVs are quantised here over their own bounds (normalized UNSIGNED_SHORT), with the offset and scale in
 *   KHR_texture_transform on the textures that sample them.
 * Where the factor cannot be moved safely (skins, instancing, morph targets, animated or parent nodes, UVs not
 * sampled by a texture or shared with other uses), glTF-Transform's layout is kept.
 */
export function quantizeGeometry(options: { meshoptFilters: boolean }): Transform {
  return createTransform('quantizeGeometry', async (doc: Document) => {
    await doc.transform(
      quantize({
        quantizePosition: QUANTIZATION_BITS.position,
        quantizeTexcoord: QUANTIZATION_BITS.texcoord,
        quantizeNormal: QUANTIZATION_BITS.normal,
        quantizeColor: QUANTIZATION_BITS.color,
        quantizeWeight: QUANTIZATION_BITS.weight,
        quantizeGeneric: QUANTIZATION_BITS.generic,
        // UVs are quantised below. meshopt's octahedral filter quantises normals and tangents itself, from full
        // precision; it does not apply to morph target deltas, which quantize() keeps handling.
        pattern: options.meshoptFilters ? /^(?!NORMAL$|TANGENT$|TEXCOORD_)/ : /^(?!TEXCOORD_)/,
        patternTargets: /.*/,
      }),
    );
    storePositionsOnGrid(doc, QUANTIZATION_BITS.position);
    quantizeTexcoords(doc, QUANTIZATION_BITS.texcoord);
    // What quantizeTexcoords could not place under a texture transform gets quantize()'s own layout.
    for (const accessor of doc.getRoot().listAccessors())
      if (isUnplacedTexcoord(accessor)) replicateToUnorm16(accessor, QUANTIZATION_BITS.texcoord);
  });
}

/**
 * The b-bit values behind quantize()'s bit-replicated 16-bit storage, or null when any element is not in
 * that exact form (so accessors quantised by someone else are left alone).
 */
export function unreplicate(array: Int16Array | Uint16Array, bits: number): Int16Array | Uint16Array | null {
  const signed = array instanceof Int16Array;
  const valueBits = bits - (signed ? 1 : 0);
  const storageBits = 16 - (signed ? 1 : 0);
  const lo = storageBits - valueBits;
  const hi = valueBits - lo;
  if (lo <= 0 || hi < 0) return null;
  const out = signed ? new Int16Array(array.length) : new Uint16Array(array.length);
  for (let i = 0; i < array.length; i++) {
    const stored = Math.abs(array[i]!);
    const value = stored >> lo;
    if (((value << lo) | (value >> hi)) !== stored) return null;
    out[i] = array[i]! < 0 ? -value : value;
  }
  return out;
}

function quantizedArray(accessor: Accessor | null, componentType: number): Int16Array | Uint16Array | null {
  if (!accessor || accessor.getSparse() || !accessor.getNormalized() || accessor.getComponentType() !== componentType) return null;
  const array = accessor.getArray();
  return array instanceof Int16Array || array instanceof Uint16Array ? array : null;
}

/** A node whose scale can take the grid factor: no skin, instancing, children or animation depends on it. */
function carriesGridScale(node: Node): boolean {
  return (
    !node.getSkin() &&
    !node.getExtension('EXT_mesh_gpu_instancing') &&
    node.listChildren().length === 0 &&
    !node.listParents().some((p) => p instanceof AnimationChannel)
  );
}

function storePositionsOnGrid(doc: Document, bits: number): void {
  const candidates = new Map<Accessor, Int16Array | Uint16Array>();
  const eligible = new Set<Mesh>();
  for (const mesh of doc.getRoot().listMeshes()) {
    const nodes = mesh.listParents().filter((p): p is Node => p instanceof Node);
    if (nodes.length === 0 || !nodes.every(carriesGridScale)) continue;
    const prims = mesh.listPrimitives();
    if (prims.some((p) => p.listTargets().length > 0)) continue;
    const arrays = prims.map((p) => {
      const accessor = p.getAttribute('POSITION');
      const array = quantizedArray(accessor, GL_SHORT);
      const grid = array && (candidates.get(accessor!) ?? unreplicate(array, bits));
      return grid ? ([accessor!, grid] as const) : null;
    });
    if (arrays.some((a) => a === null)) continue;
    for (const [accessor, grid] of arrays as [Accessor, Int16Array | Uint16Array][]) candidates.set(accessor, grid);
    eligible.add(mesh);
  }
  // An accessor shared with a mesh that keeps the normalized layout (or used otherwise) must keep it too, and
  // so must every mesh drawing it.
  for (let changed = true; changed;) {
    changed = false;
    for (const mesh of eligible) {
      const shared = mesh.listPrimitives().some((p) => meshesUsing(p.getAttribute('POSITION')!)?.some((m) => !eligible.has(m)) ?? true);
      if (shared) {
        eligible.delete(mesh);
        changed = true;
      }
    }
  }
  const scale = 1 / ((1 << (bits - 1)) - 1);
  const converted = new Set<Accessor>();
  for (const mesh of eligible) {
    for (const prim of mesh.listPrimitives()) {
      const accessor = prim.getAttribute('POSITION')!;
      if (converted.has(accessor)) continue;
      accessor.setArray(candidates.get(accessor)!).setNormalized(false);
      converted.add(accessor);
    }
    for (const node of mesh.listParents().filter((p): p is Node => p instanceof Node)) {
      const [x, y, z] = node.getScale();
      node.setScale([x * scale, y * scale, z * scale]);
    }
  }
}

/** Meshes drawing the accessor as POSITION; null when anything else (a morph target, another semantic) uses it. */
function meshesUsing(accessor: Accessor): Mesh[] | null {
  const parents = accessor.listParents().filter((p) => p.propertyType !== PropertyType.ROOT);
  const prims = parents.filter((p): p is Primitive => p instanceof Primitive);
  if (prims.length < parents.length || prims.some((p) => p.listSemantics().some((s) => s !== 'POSITION' && p.getAttribute(s) === accessor)))
    return null;
  return prims.flatMap((p) => p.listParents().filter((m): m is Mesh => m instanceof Mesh));
}

/** A float UV accessor in [0,1] that quantizeTexcoords left alone. */
function isUnplacedTexcoord(accessor: Accessor): boolean {
  const parents = accessor.listParents().filter((p) => p.propertyType !== PropertyType.ROOT);
  return (
    accessor.getComponentType() === GL_FLOAT &&
    !accessor.getSparse() &&
    parents.length > 0 &&
    parents.every((p) => p instanceof Primitive && texcoordSets(p, accessor).every((set) => set >= 0)) &&
    accessor.getMin([]).every((v) => v >= 0) &&
    accessor.getMax([]).every((v) => v <= 1)
  );
}

/**
 * quantize()'s layout for UVs in [0,1] (b bits, top bits repeated in the low ones so 1 decodes to 1), for
 * UVs with no texture transform to carry a grid. quantize() itself cannot be run for these alone: it would
 * quantise the UVs already placed on a grid a second time.
 */
function replicateToUnorm16(accessor: Accessor, bits: number): void {
  const source = accessor.getArray()!;
  const stored = new Uint16Array(source.length);
  for (let i = 0; i < source.length; i++) {
    const value = Math.round(source[i]! * ((1 << bits) - 1));
    stored[i] = (value << (16 - bits)) | (value >> (2 * bits - 16));
  }
  accessor.setArray(stored).setNormalized(true);
}

/** TEXCOORD_n semantics under which a primitive uses the accessor (-1 for any other semantic). */
function texcoordSets(prim: Primitive, accessor: Accessor): number[] {
  return prim
    .listSemantics()
    .filter((s) => prim.getAttribute(s) === accessor)
    .map((s) => (/^TEXCOORD_\d+$/.test(s) ? Number(s.slice(9)) : -1));
}

/** The UV set a texture samples: its KHR_texture_transform's override, else its own. */
function sampledSet(info: TextureInfo): number {
  return info.getExtension<TextureTransform>('KHR_texture_transform')?.getTexCoord() ?? info.getTexCoord();
}

/**
 * Quantises float UVs the way gltfpack does: each group of UV accessors drawn with the same textured
 * materials gets one grid over its own bounds, stored as normalized UNSIGNED_SHORT, and every texture that
 * samples them gets the grid's offset and scale in KHR_texture_transform. The grid has at least `bits` bits
 * per UV unit, so tiled UVs (a range of several units) keep the same precision; a range needing more than 16
 * bits stays float. UVs that cannot be handled so (untextured or shared with other uses) are left to quantize().
 */
function quantizeTexcoords(doc: Document, bits: number): void {
  const root = doc.getRoot();
  const primsOf = (material: Material) => material.listParents().filter((p): p is Primitive => p instanceof Primitive);
  const candidates = new Set(
    root.listAccessors().filter((a) => a.getComponentType() === GL_FLOAT && a.getType() === 'VEC2' && !a.getSparse() && a.getCount() > 0),
  );
  // A (material, set) pair is quantised when a texture samples that set and every primitive drawn with the
  // material has a candidate accessor there; an accessor is quantised when every use of it is such a pair.
  const key = (material: Material, set: number) => `${root.listMaterials().indexOf(material)}:${set}`;
  let pairs = new Map<string, { material: Material; set: number }>();
  for (let changed = true; changed;) {
    changed = false;
    pairs = new Map();
    for (const material of root.listMaterials()) {
      const prims = primsOf(material);
      for (const set of new Set(listTextureInfoByMaterial(material).map(sampledSet))) {
        if (prims.length && prims.every((p) => candidates.has(p.getAttribute(`TEXCOORD_${set}`)!)))
          pairs.set(key(material, set), { material, set });
      }
    }
    for (const accessor of candidates) {
      const ok = accessor.listParents().every((parent) => {
        if (!(parent instanceof Primitive)) return parent.propertyType === PropertyType.ROOT;
        const material = parent.getMaterial();
        return material !== null && texcoordSets(parent, accessor).every((set) => set >= 0 && pairs.has(key(material, set)));
      });
      if (!ok) {
        candidates.delete(accessor);
        changed = true;
      }
    }
  }
  if (pairs.size === 0) return;

  // Accessors drawn with a common material share one grid: union them, then take the bounds of each group.
  const group = new Map<Accessor, Accessor>([...candidates].map((a) => [a, a]));
  const find = (a: Accessor): Accessor => (group.get(a) === a ? a : find(group.get(a)!));
  const accessorsOf = ({ material, set }: { material: Material; set: number }) =>
    primsOf(material).map((p) => p.getAttribute(`TEXCOORD_${set}`)!);
  for (const pair of pairs.values()) {
    const [first, ...rest] = accessorsOf(pair);
    for (const a of rest) group.set(find(a), find(first!));
  }
  const grids = new Map<Accessor, { min: number[]; steps: number[]; extent: number[] } | null>();
  for (const accessor of candidates) {
    const head = find(accessor);
    if (grids.has(head)) continue;
    const members = [...candidates].filter((a) => find(a) === head);
    const min = [0, 1].map((c) => Math.min(...members.map((a) => a.getMin([])[c]!)));
    const max = [0, 1].map((c) => Math.max(...members.map((a) => a.getMax([])[c]!)));
    const extent = [0, 1].map((c) => max[c]! - min[c]! || 1);
    // At least `bits` bits per UV unit: one unit needs 2^bits - 1 steps.
    const steps = extent.map((e) => Math.max((1 << bits) - 1, 2 ** Math.ceil(Math.log2(e * ((1 << bits) - 1) + 1)) - 1));
    grids.set(head, steps.every((n) => n <= 0xffff) ? { min, steps, extent } : null);
  }

  const transforms = doc.createExtension(KHRTextureTransform);
  for (const pair of pairs.values()) {
    const grid = grids.get(find(accessorsOf(pair)[0]!));
    if (!grid) continue;
    for (const info of listTextureInfoByMaterial(pair.material).filter((i) => sampledSet(i) === pair.set)) {
      // Stored d = step/65535 stands for u = min + step/steps·extent; the asset's own transform (offset o,
      // rotation R, scale S) then gives o + R·S·u = (o + R·(S·min)) + R·(S·k)·d with k = 65535/steps·extent.
      const existing = info.getExtension<TextureTransform>('KHR_texture_transform');
      const [sx, sy] = existing?.getScale() ?? [1, 1];
      const [ox, oy] = existing?.getOffset() ?? [0, 0];
      const r = existing?.getRotation() ?? 0;
      const [mx, my] = [sx * grid.min[0]!, sy * grid.min[1]!];
      // A new Transform each time: an existing one may be shared with a texture sampling other UVs.
      const transform = transforms
        .createTransform()
        .setOffset([ox + Math.cos(r) * mx + Math.sin(r) * my, oy - Math.sin(r) * mx + Math.cos(r) * my])
        .setRotation(r)
        .setScale([(sx * 0xffff * grid.extent[0]!) / grid.steps[0]!, (sy * 0xffff * grid.extent[1]!) / grid.steps[1]!])
        .setTexCoord(existing?.getTexCoord() ?? null);
      info.setExtension('KHR_texture_transform', transform);
    }
  }
  for (const accessor of candidates) {
    const grid = grids.get(find(accessor));
    if (!grid) continue;
    const source = accessor.getArray()!;
    const stored = new Uint16Array(source.length);
    for (let i = 0; i < source.length; i++) {
      const c = i % 2;
      stored[i] = Math.round(((source[i]! - grid.min[c]!) / grid.extent[c]!) * grid.steps[c]!);
    }
    accessor.setArray(stored).setNormalized(true);
  }
  if (!root.listMaterials().some((m) => listTextureInfoByMaterial(m).some((i) => i.getExtension('KHR_texture_transform'))))
    transforms.dispose();
}
