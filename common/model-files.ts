/**
 * Which uploaded file an asset is opened from. glTF (.glb, .gltf) goes straight into the pipeline; the
 * formats studios export from Maya, Max and Blender (.fbx, .obj, .blend) are turned into glTF by Blender in
 * a first `import` stage. The API, the page, the CLI and the stages all ask this module.
 */

/** glTF, read by the pipeline itself. */
export const GLTF_MODEL = /\.(glb|gltf)$/i;
/** Formats Blender imports; an .obj brings its .mtl and textures, as a .gltf brings its .bin and images. */
export const BLENDER_MODEL = /\.(fbx|obj|blend)$/i;
/** Any file an asset can be opened from: one per upload. */
export const MODEL_FILE = /\.(glb|gltf|fbx|obj|blend)$/i;

/** The model formats in words, for messages: ".glb, .gltf, .fbx, .obj or .blend". */
export const MODEL_FORMATS_IN_WORDS = '.glb, .gltf, .fbx, .obj or .blend';

/** True when the model must go through Blender's import before the glTF stages. */
export function needsImport(modelFile: string): boolean {
  return BLENDER_MODEL.test(modelFile);
}

/** The asset's name without its model extension (DamagedHelmet.fbx → DamagedHelmet). */
export function withoutModelExtension(name: string): string {
  return name.replace(MODEL_FILE, '');
}
