import { Document } from '@gltf-transform/core';

/** A wavy grid of size×size quads: enough triangles that simplifying it takes seconds, not milliseconds. */
export function denseGrid(size: number): Document {
  const doc = new Document();
  const buffer = doc.createBuffer();
  const positions = new Float32Array((size + 1) * (size + 1) * 3);
  for (let y = 0; y <= size; y++) {
    for (let x = 0; x <= size; x++) {
      const i = (y * (size + 1) + x) * 3;
      positions.set([x / size, y / size, 0.05 * Math.sin(x / 7) * Math.cos(y / 5)], i);
    }
  }
  const indices = new Uint32Array(size * size * 6);
  for (let y = 0, k = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const a = y * (size + 1) + x;
      indices.set([a, a + 1, a + size + 1, a + 1, a + size + 2, a + size + 1], k);
      k += 6;
    }
  }
  const prim = doc
    .createPrimitive()
    .setAttribute('POSITION', doc.createAccessor().setType('VEC3').setArray(positions).setBuffer(buffer))
    .setIndices(doc.createAccessor().setType('SCALAR').setArray(indices).setBuffer(buffer));
  doc.createScene().addChild(doc.createNode().setMesh(doc.createMesh().addPrimitive(prim)));
  return doc;
}
