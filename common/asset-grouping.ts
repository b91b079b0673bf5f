import { z } from 'zod';

/** A file the artist picked or dropped, with its path inside a dropped or picked folder ('' at top level). */
export interface PickedFile<F extends { name: string; size: number } = File> {
  file: F;
  /** Folder path relative to what was picked, without a trailing slash. */
  dir: string;
}

/** One asset to upload as one job: a .glb, or a .gltf with the .bin and images it refers to. */
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

const isModel = (name: string) => /\.(glb|gltf)$/i.test(name);

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
 * Splits a pick (many files, or a folder) into assets: every .glb is one asset; every .gltf is one asset
 * with the files its buffers and images name. A folder of many models becomes a batch of jobs.
 */
export async function groupAssets<F extends { name: string; size: number }>(
  picked: PickedFile<F>[],
  readText: (file: F) => Promise<string>,
  maxBytes: number,
): Promise<Grouping<F>> {
  const byPath = new Map(picked.map((p) => [fullPath(p), p]));
  const claimed = new Set<PickedFile<F>>();
  const assets: AssetGroup<F>[] = [];

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
      for (const uri of uris) {
        let decoded = uri;
        try {
          decoded = decodeURIComponent(uri);
        } catch {
          // keep the raw uri: the match below simply fails and reports it as missing
        }
        const resource = byPath.get(joinPath(model.dir, decoded));
        if (!resource) {
          group.problems.push(`${model.file.name} needs ${decoded}, which was not picked. Add it (drop the whole folder).`);
          continue;
        }
        if (decoded.includes('/'))
          group.problems.push(
            `${decoded} is in a subfolder; the farm needs every file of a .gltf next to it. Re-export with files side by side, or use .glb.`,
          );
        if (!group.files.includes(resource)) group.files.push(resource);
        claimed.add(resource);
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
