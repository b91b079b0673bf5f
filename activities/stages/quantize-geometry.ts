import {
  type Accessor,
  AnimationChannel,
  type Document,
  type Material,
  Mesh,
  Node,
  Primitive,
  PropertyType,
  type Transform,
} from '@gltf-transform/core';
import { KHRTextureTransform, type Transform as TextureTransform } from '@gltf-transform/extensions';
import { createTransform, listTextureInfoByMaterial, quantize } from '@gltf-transform/functions';

/** glTF componentType codes (Accessor.ComponentType is typed as a plain record, so its members may be undefined). */
const GL_SHORT = 5122;
const GL_UNSIGNED_SHORT = 5123;

/**
 * Quantisation precision, in bits per component. Positions and texture coordinates use gltfpack's defaults
 * (-vp 14, -vt 12): 14 bits is a step of 1/16383 of the mesh's largest extent (0.06 mm on a 1 m asset) and
 * 12 bits a step of 1/4095 of the UV square (a quarter texel at 1024 px). Normals are left to meshopt's
 * octahedral filter at packaging (8 bits, as gltfpack -vn 8) when the output is meshopt-compressed, so they
 * are quantised once; otherwise glTF-Transform's default 10 bits applies, as before.
 */
export const QUANTIZATION_BITS = { position: 14, texcoord: 12, normal: 10, color: 8, weight: 8, generic: 12 } as const;

/**
 * Vertex quantisation (KHR_mesh_quantization) laid out for meshopt's vertex codec.
 *
 * glTF-Transform's quantize() stores a b-bit value in a 16-bit normalized integer by repeating its top bits
 * in the unused low bits, so that the largest value decodes to exactly 1. Those repeated bits change with
 * every vertex, and meshopt's byte-wise delta coding pays for them: measured on a generated 20k-triangle
 * terrain, positions took 33,375 bytes instead of 28,308 and texture coordinates 17,526 instead of 14,318
 * (gltfpack: 28,312 and 14,318). This transform runs quantize() and then stores the b-bit values themselves,
 * moving the missing factor where glTF puts the rest of the dequantisation, as gltfpack does:
 * - positions become integers on the grid (non-normalized SHORT, allowed by KHR_mesh_quantization) and the
 *   mesh's nodes get the 1/(2^(b-1)-1) scale (their scale is already quantize()'s own dequantisation);
 * - texture coordinates stay normalized UNSIGNED_SHORT and the textures that sample them get a
 *   KHR_texture_transform scale of 65535/(2^b-1).
 * Values decode to the same grid points (within one 16-bit step), so precision is unchanged. Meshes or
 * materials where the factor cannot be moved safely (skins, instancing, morph targets, animated or parent
 * nodes, UVs shared with untextured or unquantised uses) keep glTF-Transform's layout.
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
        // meshopt's octahedral filter quantises normals and tangents itself, from full precision; it does not
        // apply to morph target deltas, which quantize() keeps handling.
        ...(options.meshoptFilters ? { pattern: /^(?!NORMAL$|TANGENT$).*/, patternTargets: /.*/ } : {}),
      }),
    );
    storePositionsOnGrid(doc, QUANTIZATION_BITS.position);
    storeTexcoordsOnGrid(doc, QUANTIZATION_BITS.texcoord);
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
  // An accessor shared with a mesh that keeps the normalized layout must keep it too, and so must its meshes.
  for (let changed = true; changed;) {
    changed = false;
    for (const mesh of eligible) {
      const shared = mesh.listPrimitives().some((p) => meshesUsing(p.getAttribute('POSITION')!).some((m) => !eligible.has(m)));
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

function meshesUsing(accessor: Accessor): Mesh[] {
  return accessor
    .listParents()
    .filter((p): p is Primitive => p instanceof Primitive)
    .flatMap((p) => p.listParents().filter((m): m is Mesh => m instanceof Mesh));
}

/** TEXCOORD_n semantics under which a primitive uses the accessor (normally one). */
function texcoordSets(prim: Primitive, accessor: Accessor): number[] {
  return prim
    .listSemantics()
    .filter((s) => prim.getAttribute(s) === accessor)
    .map((s) => (/^TEXCOORD_(\d+)$/.exec(s) ? Number(s.slice(9)) : -1));
}

function storeTexcoordsOnGrid(doc: Document, bits: number): void {
  const primsOf = (material: Material) => material.listParents().filter((p): p is Primitive => p instanceof Primitive);
  const sampledSets = (material: Material) =>
    new Set(
      listTextureInfoByMaterial(material).map(
        (info) => info.getExtension<TextureTransform>('KHR_texture_transform')?.getTexCoord() ?? info.getTexCoord(),
      ),
    );
  const candidates = new Map<Accessor, Int16Array | Uint16Array>();
  for (const accessor of doc.getRoot().listAccessors()) {
    const array = quantizedArray(accessor, GL_UNSIGNED_SHORT);
    const grid = array && unreplicate(array, bits);
    if (grid) candidates.set(accessor, grid);
  }
  // A (material, set) pair converts when a texture samples that set and every primitive drawn with the
  // material has a convertible accessor there; an accessor converts when every use of it is such a pair.
  const key = (material: Material, set: number) => `${doc.getRoot().listMaterials().indexOf(material)}:${set}`;
  let pairs = new Set<string>();
  for (let changed = true; changed;) {
    changed = false;
    pairs = new Set();
    for (const material of doc.getRoot().listMaterials()) {
      for (const set of sampledSets(material)) {
        const prims = primsOf(material);
        if (prims.length && prims.every((p) => candidates.has(p.getAttribute(`TEXCOORD_${set}`)!))) pairs.add(key(material, set));
      }
    }
    for (const accessor of [...candidates.keys()]) {
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
  if (pairs.size) {
    const factor = 0xffff / ((1 << bits) - 1);
    const transforms = doc.createExtension(KHRTextureTransform);
    for (const material of doc.getRoot().listMaterials()) {
      for (const info of listTextureInfoByMaterial(material)) {
        const existing = info.getExtension<TextureTransform>('KHR_texture_transform');
        if (!pairs.has(key(material, existing?.getTexCoord() ?? info.getTexCoord()))) continue;
        // KHR_texture_transform scales before it rotates and offsets, so the factor composes with any transform.
        // A new Transform each time: an existing one may be shared with a texture that is not converted.
        const [u, v] = existing?.getScale() ?? [1, 1];
        const transform = transforms.createTransform().setScale([u * factor, v * factor]);
        if (existing) transform.setOffset(existing.getOffset()).setRotation(existing.getRotation()).setTexCoord(existing.getTexCoord());
        info.setExtension('KHR_texture_transform', transform);
      }
    }
  }
  for (const [accessor, grid] of candidates) accessor.setArray(grid);
}
