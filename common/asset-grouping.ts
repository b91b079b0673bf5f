import { z } from 'zod';
import { MODEL_FILE } from './model-files.js';

/** A file the artist picked or dropped, with its path inside a dropped or picked folder ('' at top level). */
export interface PickedFile<F extends { name: string; size: number } = File> {
  file: F;
  /** Folder path relative to what was picked, without a trailing slash. */
  dir: string;
}

/** One asset to upload as one job: a .glb, .fbx or .blend, or a .gltf or .obj with the files it refers to. */
export interface AssetGroup<F extends { name: string; size: number } = File> {
  name: string;
  files: PickedFile<F>[];
  bytes: number;
  /** Why the asset cannot be sent as it is; empty when it can. */
  problems: string[];
}

export interface Grouping<F extends { name: string; size: number } = File> {
  assets: AssetGroup<F>[];
  /** Picked files no model refers to; they are left out of the upload. */
  unused: PickedFile<F>[];
}

const GltfRefs = z.object({
  buffers: z.array(z.object({ uri: z.string().optional() })).optional(),
  images: z.array(z.object({ uri: z.string().optional() })).optional(),
});

const isModel = (name: string) => MODEL_FILE.test(name);

/** The files an .obj names (its mtllib libraries), and those an .mtl names (its texture maps). */
function objReferences(text: string, kind: 'obj' | 'mtl'): string[] {
  const refs: string[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (kind === 'obj') {
      const m = /^mtllib\s+(.+)$/.exec(line);
      // Several libraries may share a line; names with spaces are rare in exports and break other tools too.
      if (m) refs.push(...m[1]!.split(/\s+/));
    } else {
      // The map's file name is its last word, after options such as -bm 1.0 or -s 1 1 1.
      const m = /^(map_\w+|bump|disp|decal|norm|refl)\s+(.+)$/i.exec(line);
      if (m) refs.push(m[2]!.split(/\s+/).at(-1)!);
    }
  }
  return refs;
}

function joinPath(dir: string, relative: string): string {
  const parts = dir ? dir.split('/') : [];
  for (const part of relative.split('/')) {
    if (part === '..') parts.pop();
    else if (part !== '.' && part !== '') parts.push(part);
  }
  return parts.join('/');
}

const fullPath = (p: PickedFile<{ name: string; size: number }>) => (p.dir ? `${p.dir}/${p.file.name}` : p.file.name);

/**
 * Splits a pick (many files, or a folder) into assets: every .glb, .fbx and .blend is one asset; every
 * .gltf is one asset with the files its buffers and images name, every .obj one with its .mtl libraries and
 * the textures they name. A folder of many models becomes a batch of jobs.
 */
export async function groupAssets<F extends { name: string; size: number }>(
  picked: PickedFile<F>[],
  readText: (file: F) => Promise<string>,
  maxBytes: number,
): Promise<Grouping<F>> {
  const byPath = new Map(picked.map((p) => [fullPath(p), p]));
  const claimed = new Set<PickedFile<F>>();
  const assets: AssetGroup<F>[] = [];
  /** Adds the file a model refers to (a glTF URI, or an OBJ/MTL path) to its group; null when it was not picked. */
  const claim = (group: AssetGroup<F>, model: PickedFile<F>, reference: string): PickedFile<F> | null => {
    let decoded = reference;
    if (/\.gltf$/i.test(model.file.name)) {
      try {
        decoded = decodeURIComponent(reference);
      } catch {
        // keep the raw uri: the match below simply fails and reports it as missing
      }
    }
    const resource = byPath.get(joinPath(model.dir, decoded.replaceAll('\\', '/')));
    if (!resource) {
      group.problems.push(`${model.file.name} needs ${decoded}, which was not picked. Add it (drop the whole folder).`);
      return null;
    }
    if (decoded.includes('/'))
      group.problems.push(
        `${decoded} is in a subfolder; the farm needs every file of a model next to it. Re-export with files side by side, or use .glb.`,
      );
    if (!group.files.includes(resource)) group.files.push(resource);
    claimed.add(resource);
    return resource;
  };

  for (const model of picked.filter((p) => isModel(p.file.name))) {
    claimed.add(model);
    const group: AssetGroup<F> = { name: model.file.name, files: [model], bytes: 0, problems: [] };
    if (/\.gltf$/i.test(model.file.name)) {
      let refs: z.infer<typeof GltfRefs> = {};
      try {
        const parsed = GltfRefs.safeParse(JSON.parse(await readText(model.file)));
        if (parsed.success) refs = parsed.data;
        else group.problems.push(`${model.file.name} is not a glTF file the page can read.`);
      } catch {
        group.problems.push(`${model.file.name} is not valid JSON; export the .gltf again.`);
      }
      const uris = [...(refs.buffers ?? []), ...(refs.images ?? [])].flatMap((r) => (r.uri && !r.uri.startsWith('data:') ? [r.uri] : []));
      for (const uri of uris) claim(group, model, uri);
    } else if (/\.obj$/i.test(model.file.name)) {
      // An .obj names its .mtl libraries; each .mtl names its textures.
      for (const library of objReferences(await readText(model.file), 'obj')) {
        const mtl = claim(group, model, library);
        if (mtl) for (const map of objReferences(await readText(mtl.file), 'mtl')) claim(group, model, map);
      }
    }
    const names = new Set<string>();
    for (const f of group.files) {
      if (names.has(f.file.name)) group.problems.push(`Two files are named ${f.file.name}; rename one.`);
      names.add(f.file.name);
    }
    group.bytes = group.files.reduce((sum, f) => sum + f.file.size, 0);
    if (group.bytes > maxBytes) group.problems.push(`It is larger than the upload limit; reduce the textures or split the asset.`);
    assets.push(group);
  }
  return { assets, unused: picked.filter((p) => !claimed.has(p)) };
}
