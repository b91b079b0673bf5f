import { ImageUtils, Primitive, type Document, type Texture } from '@gltf-transform/core';
import { listTextureSlots } from '@gltf-transform/functions';
import type { AssetStats } from '../common/jobs.js';

/**
 * Counts what an artist cares about in a glTF document. `imageFacts` gives the size and bytes of an image
 * the document holds only a reference to (activities/image-refs.ts).
 */
export function readAssetStats(
  doc: Document,
  fileBytes: number,
  imageFacts?: (image: Uint8Array, mimeType: string) => { size: [number, number] | null; bytes: number } | undefined,
): AssetStats {
  const root = doc.getRoot();
  let primitives = 0;
  let vertices = 0;
  let triangles = 0;
  for (const mesh of root.listMeshes()) {
    for (const prim of mesh.listPrimitives()) {
      primitives++;
      const count = prim.getAttribute('POSITION')?.getCount() ?? 0;
      vertices += count;
      const elements = prim.getIndices()?.getCount() ?? count;
      const mode = prim.getMode();
      if (mode === Primitive.Mode.TRIANGLES) triangles += Math.floor(elements / 3);
      else if (mode === Primitive.Mode.TRIANGLE_STRIP || mode === Primitive.Mode.TRIANGLE_FAN) triangles += Math.max(0, elements - 2);
    }
  }
  const textures = root.listTextures().map((texture, i) => {
    const image = texture.getImage();
    const mimeType = texture.getMimeType();
    const facts = image ? imageFacts?.(image, mimeType) : undefined;
    const size = facts ? facts.size : image ? imageSize(image, mimeType) : null;
    return {
      name: textureLabel(texture, i),
      mimeType,
      width: size?.[0] ?? null,
      height: size?.[1] ?? null,
      bytes: facts?.bytes ?? image?.byteLength ?? 0,
    };
  });
  return {
    fileBytes,
    meshes: root.listMeshes().length,
    primitives,
    vertices,
    triangles,
    materials: root.listMaterials().length,
    textures,
    extensionsUsed: root
      .listExtensionsUsed()
      .map((e) => e.extensionName)
      .sort(),
  };
}

/** What an artist recognises a texture by: its name or file, else the material slots that use it. */
export function textureLabel(texture: Texture, index: number): string {
  const named = texture.getName() || texture.getURI();
  if (named) return named;
  const slots = [...new Set(listTextureSlots(texture))];
  return slots.length ? `${slots.join(' + ')} (texture ${index})` : `texture ${index}`;
}

/**
 * The image's size from its header, or null when the header cannot be read. glTF-Transform reads past the
 * end of a truncated or mislabelled image (a RangeError): that is a bad upload, which the textures stage
 * reports to the artist as IMAGE_UNREADABLE, not a reason for inspect to crash and be retried.
 */
export function imageSize(image: Uint8Array, mimeType: string): [number, number] | null {
  try {
    return ImageUtils.getSize(image, mimeType);
  } catch {
    return null;
  }
}
