import type { Document } from '@gltf-transform/core';
import { listTextureInfo } from '@gltf-transform/functions';
import { z } from 'zod';

/** Extensions whose presence is a matter of encoding, which the pipeline chooses per output: not content. */
const ENCODING_EXTENSIONS: ReadonlySet<string> = new Set([
  'KHR_draco_mesh_compression',
  'EXT_meshopt_compression',
  'KHR_mesh_quantization',
  'EXT_texture_webp',
  'EXT_texture_avif',
  'KHR_texture_basisu',
  'KHR_texture_transform', // counted as textureTransforms: quantisation may add it
]);

/** What an asset carries that an engine uses, and that every output must keep. */
export const CarriedFeatures = z.object({
  animationChannels: z.number(),
  skins: z.number(),
  /** Morph targets, summed over meshes (a mesh counts its primitive with the most). */
  morphTargets: z.number(),
  cameras: z.number(),
  lights: z.number(),
  /** The most COLOR_n sets on one primitive. */
  vertexColorSets: z.number(),
  /** The most TEXCOORD_n sets on one primitive. */
  uvSets: z.number(),
  textureTransforms: z.number(),
  unlitMaterials: z.number(),
  /** Content extensions (materials, lights, instancing…), by name. */
  extensions: z.array(z.string()),
});
export type CarriedFeatures = z.infer<typeof CarriedFeatures>;

/** One thing an output lost, for the report. */
export interface DroppedFeature {
  /** The output, e.g. "lod1". */
  output: string;
  feature: string;
  /** How many the upload had, and the output has (or "used" / "absent" for an extension). */
  before: number | string;
  after: number | string;
  reason: string;
}

/** Counts what the document carries (see CarriedFeatures). */
export function readCarriedFeatures(doc: Document): CarriedFeatures {
  const root = doc.getRoot();
  const prims = root.listMeshes().flatMap((m) => m.listPrimitives());
  const setsOf = (prefix: string) => Math.max(0, ...prims.map((p) => p.listSemantics().filter((s) => s.startsWith(prefix)).length));
  return {
    // A channel with no target node animates through an extension glTF-Transform does not know
    // (KHR_animation_pointer): that extension is what is dropped, and the report names it.
    animationChannels: root.listAnimations().reduce((n, a) => n + a.listChannels().filter((c) => c.getTargetNode()).length, 0),
    skins: root.listSkins().length,
    morphTargets: root.listMeshes().reduce((n, m) => n + Math.max(0, ...m.listPrimitives().map((p) => p.listTargets().length)), 0),
    cameras: root.listCameras().length,
    lights: root.listNodes().filter((n) => n.getExtension('KHR_lights_punctual')).length,
    vertexColorSets: setsOf('COLOR_'),
    uvSets: setsOf('TEXCOORD_'),
    textureTransforms: root
      .listTextures()
      .reduce((n, t) => n + listTextureInfo(t).filter((i) => i.getExtension('KHR_texture_transform')).length, 0),
    unlitMaterials: root.listMaterials().filter((m) => m.getExtension('KHR_materials_unlit')).length,
    extensions: root
      .listExtensionsUsed()
      .map((e) => e.extensionName)
      .filter((name) => !ENCODING_EXTENSIONS.has(name))
      .sort(),
  };
}

const FEATURE_WORDS: Record<Exclude<keyof CarriedFeatures, 'extensions'>, string> = {
  animationChannels: 'animation channels',
  skins: 'skins',
  morphTargets: 'morph targets',
  cameras: 'cameras',
  lights: 'lights',
  vertexColorSets: 'vertex colour sets',
  uvSets: 'UV sets',
  textureTransforms: 'texture transforms',
  unlitMaterials: 'unlit materials',
};

/**
 * What `output` lost against `input`, each with the reason. A level may legitimately have less of a thing
 * because simplification removed a whole part (its vertex colours with it): that is said as such; anything
 * else is a pipeline defect, said as one, never silent.
 */
export function droppedFeatures(name: string, input: CarriedFeatures, output: CarriedFeatures, simplified: boolean): DroppedFeature[] {
  const dropped: DroppedFeature[] = [];
  for (const [key, words] of Object.entries(FEATURE_WORDS) as [keyof typeof FEATURE_WORDS, string][]) {
    if (output[key] < input[key]) {
      dropped.push({
        output: name,
        feature: words,
        before: input[key],
        after: output[key],
        reason: simplified
          ? `simplification removed the parts of the model that carried them`
          : `lost while processing: a pipeline defect; report the job id to the pipeline team`,
      });
    }
  }
  for (const extension of input.extensions.filter((e) => !output.extensions.includes(e))) {
    dropped.push({
      output: name,
      feature: extension,
      before: 'used',
      after: 'absent',
      reason: simplified
        ? 'simplification removed the parts of the model that used it'
        : 'lost while processing: a pipeline defect; report the job id',
    });
  }
  return dropped;
}
