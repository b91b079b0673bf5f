import { type Accessor, Document, type Material, type Node, type Primitive } from '@gltf-transform/core';
import { KHRTextureTransform, type Transform as TextureTransform } from '@gltf-transform/extensions';
import { describe, expect, it } from 'vitest';
import { QUANTIZATION_BITS, quantizeGeometry, unreplicate } from './quantize-geometry.js';

const SIZE = 24;

/** A wavy textured grid on a translated, scaled node: float positions, normals and UVs, as an upload has. */
function texturedGrid(options: { textured?: boolean; morph?: boolean; uvRange?: [number, number] } = {}) {
  const doc = new Document();
  const buffer = doc.createBuffer();
  const n = (SIZE + 1) * (SIZE + 1);
  const positions = new Float32Array(n * 3);
  const normals = new Float32Array(n * 3);
  const uvs = new Float32Array(n * 2);
  for (let y = 0, i = 0; y <= SIZE; y++) {
    for (let x = 0; x <= SIZE; x++, i++) {
      positions.set([x / SIZE - 0.3, 0.07 * Math.sin(x / 3) * Math.cos(y / 4), y / SIZE + 0.1], i * 3);
      normals.set([0, 1, 0], i * 3);
      const [from, to] = options.uvRange ?? [0, 1];
      uvs.set([from + (to - from) * (0.05 + (0.9 * x) / SIZE), from + (to - from) * (0.1 + (0.7 * y) / SIZE)], i * 2);
    }
  }
  const indices = new Uint16Array(SIZE * SIZE * 6);
  for (let y = 0, k = 0; y < SIZE; y++) {
    for (let x = 0; x < SIZE; x++, k += 6) {
      const a = y * (SIZE + 1) + x;
      indices.set([a, a + SIZE + 1, a + 1, a + 1, a + SIZE + 1, a + SIZE + 2], k);
    }
  }
  const accessor = (type: 'VEC2' | 'VEC3' | 'SCALAR', array: Float32Array | Uint16Array) =>
    doc.createAccessor().setType(type).setArray(array).setBuffer(buffer);
  const material = doc.createMaterial('ground');
  if (options.textured !== false) {
    const texture = doc.createTexture('albedo').setMimeType('image/png').setImage(new Uint8Array(8));
    material.setBaseColorTexture(texture);
  }
  const prim = doc
    .createPrimitive()
    .setAttribute('POSITION', accessor('VEC3', positions))
    .setAttribute('NORMAL', accessor('VEC3', normals))
    .setAttribute('TEXCOORD_0', accessor('VEC2', uvs))
    .setIndices(accessor('SCALAR', indices))
    .setMaterial(material);
  if (options.morph)
    prim.addTarget(
      doc.createPrimitiveTarget().setAttribute(
        'POSITION',
        accessor(
          'VEC3',
          positions.map(() => 0.01),
        ),
      ),
    );
  const node = doc.createNode('ground').setTranslation([2, 0, -1]).setScale([3, 3, 3]).setMesh(doc.createMesh().addPrimitive(prim));
  doc.createScene().addChild(node);
  return { doc, positions, uvs };
}

function onlyPrimitive(doc: Document): Primitive {
  return doc.getRoot().listMeshes()[0]!.listPrimitives()[0]!;
}

function meshNode(doc: Document): Node {
  return doc
    .getRoot()
    .listNodes()
    .find((n) => n.getMesh())!;
}

/** What a loader computes: the element as stored (normalized or not), then the node's world matrix. */
function worldPositions(doc: Document): number[][] {
  const m = meshNode(doc).getWorldMatrix();
  const position = onlyPrimitive(doc).getAttribute('POSITION')!;
  return Array.from({ length: position.getCount() }, (_, i) => {
    const [x = 0, y = 0, z = 0] = position.getElement(i, []);
    return [0, 1, 2].map((r) => m[r]! * x + m[4 + r]! * y + m[8 + r]! * z + m[12 + r]!);
  });
}

/** The UV a sampler uses: the stored value, then the texture's KHR_texture_transform (scale, rotation, offset). */
function sampledUvs(material: Material, texcoord: Accessor): number[][] {
  const t = material.getBaseColorTextureInfo()!.getExtension<TextureTransform>('KHR_texture_transform');
  const [sx, sy] = t?.getScale() ?? [1, 1];
  const [ox, oy] = t?.getOffset() ?? [0, 0];
  const r = t?.getRotation() ?? 0;
  return Array.from({ length: texcoord.getCount() }, (_, i) => {
    const [u = 0, v = 0] = texcoord.getElement(i, []);
    const [a, b] = [u * sx, v * sy];
    return [Math.cos(r) * a + Math.sin(r) * b + ox, -Math.sin(r) * a + Math.cos(r) * b + oy];
  });
}

function maxError(a: number[][], b: number[][]): number {
  return Math.max(...a.flatMap((row, i) => row.map((v, j) => Math.abs(v - b[i]![j]!))));
}

describe('quantizeGeometry', () => {
  it('stores positions as 14-bit grid integers with the scale on the node, decoding to within half a grid step', async () => {
    const { doc } = texturedGrid();
    const before = worldPositions(doc);
    await doc.transform(quantizeGeometry({ meshoptFilters: true }));
    const position = onlyPrimitive(doc).getAttribute('POSITION')!;
    expect(position.getComponentType()).toBe(5122);
    expect(position.getNormalized()).toBe(false);
    const limit = (1 << (QUANTIZATION_BITS.position - 1)) - 1;
    expect(Math.max(...Array.from(position.getArray() as Int16Array, Math.abs))).toBe(limit);
    // Node scale 3 × largest half-extent 0.5 over 8191 steps: half a step is 9.2e-5.
    expect(maxError(worldPositions(doc), before)).toBeLessThan((3 * 0.5) / limit / 2 + 1e-6);
    expect(
      doc
        .getRoot()
        .listExtensionsUsed()
        .map((e) => e.extensionName),
    ).toContain('KHR_mesh_quantization');
  });

  it('stores UVs as 12-bit values with the scale in KHR_texture_transform, sampling within half a step', async () => {
    const { doc, uvs } = texturedGrid();
    await doc.transform(quantizeGeometry({ meshoptFilters: true }));
    const prim = onlyPrimitive(doc);
    const texcoord = prim.getAttribute('TEXCOORD_0')!;
    expect(texcoord.getComponentType()).toBe(5123);
    expect(texcoord.getNormalized()).toBe(true);
    expect(Math.max(...(texcoord.getArray() as Uint16Array))).toBeLessThanOrEqual((1 << QUANTIZATION_BITS.texcoord) - 1);
    const original = Array.from({ length: uvs.length / 2 }, (_, i) => [uvs[2 * i]!, uvs[2 * i + 1]!]);
    expect(maxError(sampledUvs(prim.getMaterial()!, texcoord), original)).toBeLessThan(0.5 / 4095 + 1e-6);
  });

  it('quantises UVs outside [0,1] and tiled UVs too, keeping at least 12 bits per UV unit', async () => {
    for (const uvRange of [
      [1, 2],
      [-3, 5],
    ] as [number, number][]) {
      const { doc, uvs } = texturedGrid({ uvRange });
      await doc.transform(quantizeGeometry({ meshoptFilters: true }));
      const prim = onlyPrimitive(doc);
      const texcoord = prim.getAttribute('TEXCOORD_0')!;
      expect(texcoord.getComponentType(), `UVs in ${uvRange}`).toBe(5123);
      const original = Array.from({ length: uvs.length / 2 }, (_, i) => [uvs[2 * i]!, uvs[2 * i + 1]!]);
      expect(maxError(sampledUvs(prim.getMaterial()!, texcoord), original), `UVs in ${uvRange}`).toBeLessThan(0.5 / 4095 + 1e-6);
    }
  });

  it('composes with a texture transform the asset already had', async () => {
    const { doc } = texturedGrid();
    const material = onlyPrimitive(doc).getMaterial()!;
    const transform = doc.createExtension(KHRTextureTransform).createTransform().setOffset([0.25, -0.5]).setScale([2, 3]).setRotation(0.3);
    material.getBaseColorTextureInfo()!.setExtension('KHR_texture_transform', transform);
    const expected = sampledUvs(material, onlyPrimitive(doc).getAttribute('TEXCOORD_0')!);
    await doc.transform(quantizeGeometry({ meshoptFilters: true }));
    const after = sampledUvs(onlyPrimitive(doc).getMaterial()!, onlyPrimitive(doc).getAttribute('TEXCOORD_0')!);
    // Half a 12-bit step on each axis, scaled by (2, 3) and then rotated: at most its length on either axis.
    expect(maxError(after, expected)).toBeLessThan((Math.hypot(2, 3) * 0.5) / 4095 + 1e-6);
  });

  it('leaves normals to the meshopt octahedral filter, and quantises them when another codec follows', async () => {
    const meshopt = texturedGrid().doc;
    await meshopt.transform(quantizeGeometry({ meshoptFilters: true }));
    expect(onlyPrimitive(meshopt).getAttribute('NORMAL')!.getComponentType()).toBe(5126);
    const other = texturedGrid().doc;
    await other.transform(quantizeGeometry({ meshoptFilters: false }));
    expect(onlyPrimitive(other).getAttribute('NORMAL')!.getComponentType()).toBe(5122);
  });

  it("keeps glTF-Transform's normalized layout where the factor has nowhere to go", async () => {
    const { doc } = texturedGrid({ textured: false, morph: true });
    const before = worldPositions(doc);
    await doc.transform(quantizeGeometry({ meshoptFilters: true }));
    const prim = onlyPrimitive(doc);
    // Morph targets: their deltas are normalized like the base positions, so the node cannot carry a grid scale.
    expect(prim.getAttribute('POSITION')!.getNormalized()).toBe(true);
    expect(maxError(worldPositions(doc), before)).toBeLessThan((3 * 0.5) / 8191);
    // No texture samples the UVs, so there is no transform to carry theirs.
    expect(unreplicate(prim.getAttribute('TEXCOORD_0')!.getArray() as Uint16Array, QUANTIZATION_BITS.texcoord)).not.toBeNull();
    expect(
      doc
        .getRoot()
        .listExtensionsUsed()
        .map((e) => e.extensionName),
    ).not.toContain('KHR_texture_transform');
  });
});
