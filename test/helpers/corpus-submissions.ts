import fs from 'node:fs/promises';
import path from 'node:path';
import type { GLTF } from '@gltf-transform/core';
import { cachedCorpus, pngBomb, rebuildGlb, seededRandom } from './asset-corpus.js';

/**
 * The uploads of issue 17's check, generated from a seed: the generated corpus's valid and broken cases,
 * then seeded variants of them (renamed in many scripts, cut short, with broken references, grown buffer
 * views, bombs of every kind) and hostile uploads the API must refuse at once. What each must end as is
 * known by construction, never read back from the pipeline.
 */

export interface UploadFile {
  name: string;
  bytes: Uint8Array;
}

/** What a submission must end as. */
export type Expectation =
  /** Completes with the default preset (or fails naming the feature this pipeline cannot process). */
  | { kind: 'valid' }
  /** Fails on its first attempt, with one of `codes` among the failure's details (any code when empty). */
  | { kind: 'invalid'; codes: string[] }
  /** Refused by the API before any job starts: one of `status`, one of the error `codes`, a message naming `names`. */
  | { kind: 'refused'; status: number[]; codes: string[]; names: string }
  /** Path-like names: stored under their last component (or refused); nothing written outside the data folder. */
  | { kind: 'contained' };

export interface Submission {
  label: string;
  files: UploadFile[];
  expect: Expectation;
  /** Form fields beside the files (options, preset). */
  fields?: Record<string, string>;
  /** A request the multipart form cannot say (a lying Content-Length, a body that is not multipart). */
  raw?: 'huge-content-length' | 'not-multipart' | 'raw-file-name' | 'forged-upload-ids';
  /** Outputs of this job go back in as uploads once it completes (issue 17: the pipeline's own outputs are valid input). */
  roundTrip?: boolean;
}

/** Names in the scripts and shapes artists use: every one valid as a file name on Linux, macOS and Windows. */
const NAME_STEMS = [
  'модель',
  'текстура персонажа',
  '角色模型',
  'キャラクター',
  '캐릭터',
  'χαρακτήρας',
  'شخصية',
  'דמות',
  'personnage_été',
  'Straße',
  'hero 🐉 dragon',
  'niño-año',
  'card (final) v2',
  "o'brien",
  'a+b=c',
  '#1 hero',
  '100%',
  'देवनागरी',
];

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

/** A name for a renamed upload: a stem, sometimes long (up to 200 UTF-8 bytes), always carrying the run token. */
function seededName(random: () => number, token: string, ext: string): string {
  let stem = pick(random, NAME_STEMS);
  if (random() < 0.15) while (Buffer.byteLength(stem) < 150) stem += `-${pick(random, NAME_STEMS)}`;
  while (Buffer.byteLength(`${stem}-${token}${ext}`) > 200) stem = [...stem].slice(0, -1).join('');
  return `${stem}-${token}${ext}`;
}

const TRUNCATION_CODES = [
  'GLB_LENGTH_MISMATCH',
  'GLB_UNEXPECTED_END_OF_CHUNK_DATA',
  'GLB_UNEXPECTED_END_OF_CHUNK_HEADER',
  'GLB_CHUNK_TOO_BIG',
  'GLB_UNEXPECTED_END_OF_HEADER',
];

async function readCase(files: string[]): Promise<UploadFile[]> {
  return Promise.all(files.map(async (f) => ({ name: path.basename(f), bytes: new Uint8Array(await fs.readFile(f)) })));
}

/**
 * `count` submissions, seeded: every case of the generated corpus (or `corpusCases` of them, sampled),
 * each hostile upload once, outputs to send back in, then seeded variants (about half valid, a third
 * invalid, the rest hostile). `token` goes into every generated name, so this run's files can be told from
 * anyone else's.
 */
export async function corpusSubmissions(options: {
  count: number;
  seed: number;
  token: string;
  corpusCases?: number;
  roundTrips?: number;
}): Promise<Submission[]> {
  const { count, seed, token } = options;
  const random = seededRandom(seed);
  const corpus = await cachedCorpus();
  const valid = await Promise.all(corpus.valid.map(async (c) => ({ name: c.name, files: await readCase(c.files) })));
  const broken = await Promise.all(
    corpus.broken.map(async (c) => ({ name: c.name, files: await readCase(c.files), codes: c.expectCodes })),
  );
  const whole: Submission[] = [
    ...valid.map((c): Submission => ({ label: `valid/${c.name}`, files: c.files, expect: { kind: 'valid' } })),
    ...broken.map((c): Submission => ({ label: `broken/${c.name}`, files: c.files, expect: { kind: 'invalid', codes: c.codes } })),
  ];
  const out = options.corpusCases === undefined ? whole : shuffle(whole, random).slice(0, options.corpusCases);
  const glbCases = valid.filter((c) => c.files.length === 1 && c.files[0]!.name.endsWith('.glb'));
  const quad = glbCases.find((c) => c.name === 'quad')!.files[0]!.bytes;

  // The pipeline's own outputs, of each preset and of KTX2 textures, go back in (see corpus-run.ts).
  const tripSettings: Record<string, string>[] = [
    {},
    { preset: 'mobile' },
    { preset: 'archive' },
    { options: JSON.stringify({ textureFormat: 'ktx2' }) },
  ];
  for (const [i, fields] of tripSettings.slice(0, options.roundTrips ?? tripSettings.length).entries()) {
    const source = pick(
      random,
      valid.filter((c) => /textures|skin|ktx2|materials/.test(c.name)),
    );
    out.push({ label: `round-trip-source/${source.name}#${i}`, files: source.files, expect: { kind: 'valid' }, fields, roundTrip: true });
  }

  const hostile: (() => Submission)[] = [
    () => ({
      label: 'hostile/parent-folder-name',
      files: [{ name: `../../${token}-escape.glb`, bytes: quad }],
      expect: { kind: 'contained' },
    }),
    () => ({
      label: 'hostile/backslash-folder-name',
      files: [{ name: `..\\..\\${token}-escape.glb`, bytes: quad }],
      expect: { kind: 'contained' },
    }),
    () => ({ label: 'hostile/absolute-name', files: [{ name: `/etc/${token}-escape.glb`, bytes: quad }], expect: { kind: 'contained' } }),
    () => ({
      label: 'hostile/dot-dot-name',
      files: [{ name: '..', bytes: quad }],
      expect: { kind: 'refused', status: [400], codes: ['UPLOAD_BAD_FILE'], names: '' },
    }),
    () => ({
      label: 'hostile/nul-in-name',
      files: [{ name: `bad\u0000${token}.glb`, bytes: quad }],
      expect: { kind: 'refused', status: [400], codes: ['UPLOAD_BAD_FILE'], names: token },
    }),
    // A form encodes a line break in a name (%0D%0A); a hand-made request sends it raw, breaking the part's header.
    () => ({
      label: 'hostile/line-break-in-name',
      files: [{ name: `bad\r\n${token}.glb`, bytes: quad }],
      raw: 'raw-file-name',
      expect: { kind: 'refused', status: [400], codes: ['UPLOAD_BAD_FILE'], names: token },
    }),
    () => {
      const name = `${'д'.repeat(150)}-${token}.glb`;
      return {
        label: 'hostile/300-byte-name',
        files: [{ name, bytes: quad }],
        expect: { kind: 'refused', status: [400], codes: ['UPLOAD_BAD_FILE'], names: 'дддд' },
      };
    },
    () => {
      const multi = valid.find((c) => c.name === 'multi-file-unicode.gltf')!;
      const bin = multi.files.find((f) => f.name.endsWith('.bin'))!;
      return {
        label: 'hostile/duplicate-names',
        files: [...multi.files, bin],
        expect: { kind: 'refused', status: [400], codes: ['UPLOAD_DUPLICATE_NAME'], names: bin.name },
      };
    },
    () => ({
      label: 'hostile/50-models',
      files: Array.from({ length: 50 }, (_, i) => ({ name: `part-${i}-${token}.glb`, bytes: quad })),
      expect: { kind: 'refused', status: [400], codes: ['UPLOAD_TOO_MANY_MODELS'], names: `part-1-${token}.glb` },
    }),
    () => ({
      label: 'hostile/too-many-files',
      files: [
        { name: `main-${token}.glb`, bytes: quad },
        ...Array.from({ length: 80 }, (_, i) => ({ name: `extra-${i}-${token}.png`, bytes: new Uint8Array(8) })),
      ],
      expect: { kind: 'refused', status: [400], codes: ['UPLOAD_TOO_MANY_FILES'], names: '' },
    }),
    () => ({
      label: 'hostile/no-model',
      files: [{ name: `texture-${token}.png`, bytes: new Uint8Array(16) }],
      expect: { kind: 'refused', status: [400], codes: ['UPLOAD_NO_MODEL'], names: '' },
    }),
    () => ({
      label: 'hostile/huge-content-length',
      files: [{ name: `huge-${token}.glb`, bytes: quad }],
      raw: 'huge-content-length',
      expect: { kind: 'refused', status: [413], codes: ['UPLOAD_TOO_LARGE'], names: '' },
    }),
    () => ({
      label: 'hostile/not-multipart',
      files: [],
      raw: 'not-multipart',
      expect: { kind: 'refused', status: [400], codes: ['UPLOAD_NOT_MULTIPART'], names: '' },
    }),
    // A JSON job start (resumable uploads) naming upload ids that are no one's, or paths.
    () => ({
      label: 'hostile/forged-upload-ids',
      files: [{ name: `forged-${token}.glb`, bytes: quad }],
      raw: 'forged-upload-ids',
      expect: { kind: 'refused', status: [400], codes: ['UPLOAD_NOT_FOUND', 'BAD_REQUEST'], names: '' },
    }),
    () => ({
      label: 'hostile/bad-options',
      files: [{ name: `quad-${token}.glb`, bytes: quad }],
      fields: { options: '{"preset": "ultra"' },
      expect: { kind: 'refused', status: [400], codes: ['BAD_OPTIONS'], names: '' },
    }),
    () => {
      // A PNG whose header claims up to 60,000² pixels over a few bytes: refused by its header, never decoded.
      const side = 20_000 + Math.floor(random() * 40_000);
      const multi = valid.find((c) => c.name === 'multi-file-unicode.gltf')!;
      return {
        label: `hostile/png-bomb-${side}`,
        files: multi.files.map((f) => (f.name.endsWith('.png') ? { ...f, bytes: pngBomb(side, side) } : f)),
        expect: { kind: 'invalid', codes: ['TEXTURE_TOO_LARGE', 'IMAGE_DATA_INVALID', 'IMAGE_UNRECOGNIZED_FORMAT'] },
      };
    },
    () => {
      const depth = 1000 + Math.floor(random() * 200_000);
      const json = `{"asset":{"version":"2.0","extras":${'['.repeat(depth)}${']'.repeat(depth)}}}`;
      return {
        label: `hostile/json-depth-${depth}`,
        files: [{ name: `deep-${token}.gltf`, bytes: new TextEncoder().encode(json) }],
        expect: { kind: 'invalid', codes: ['JSON_TOO_DEEP'] },
      };
    },
  ];

  const invalid: (() => Submission)[] = [
    () => {
      const c = pick(random, glbCases);
      const glb = c.files[0]!.bytes;
      const cut = 12 + Math.floor(random() * (glb.length - 13));
      return {
        label: `cut/${c.name}@${cut}`,
        files: [{ name: seededName(random, token, '.glb'), bytes: glb.subarray(0, cut) }],
        expect: { kind: 'invalid', codes: [...TRUNCATION_CODES, 'GLB_INVALID_MAGIC'] },
      };
    },
    () => {
      const c = pick(
        random,
        glbCases.filter((g) => !/scene-without-meshes/.test(g.name)),
      );
      const bytes = rebuildGlb(c.files[0]!.bytes, (json) => {
        const prim = json.meshes?.[0]?.primitives[0];
        if (prim) prim.attributes['POSITION'] = 1000 + Math.floor(random() * 1000);
      });
      return {
        label: `bad-ref/${c.name}`,
        files: [{ name: seededName(random, token, '.glb'), bytes }],
        expect: { kind: 'invalid', codes: ['UNRESOLVED_REFERENCE'] },
      };
    },
    () => {
      const c = pick(
        random,
        glbCases.filter((g) => !/scene-without-meshes/.test(g.name)),
      );
      const bytes = rebuildGlb(c.files[0]!.bytes, (json) => {
        const view = json.bufferViews?.[Math.floor(random() * (json.bufferViews?.length ?? 1))];
        if (view) view.byteLength += 4 * (1 + Math.floor(random() * 100_000));
      });
      return {
        label: `long-view/${c.name}`,
        files: [{ name: seededName(random, token, '.glb'), bytes }],
        expect: { kind: 'invalid', codes: ['BUFFER_VIEW_TOO_LONG'] },
      };
    },
    () => ({
      label: 'random-bytes',
      files: [
        { name: seededName(random, token, '.glb'), bytes: new Uint8Array(64 + Math.floor(random() * 4096)).map(() => random() * 256) },
      ],
      expect: { kind: 'invalid', codes: ['GLB_INVALID_MAGIC', 'GLB_LENGTH_MISMATCH', 'UNRECOGNIZED_FORMAT'] },
    }),
    () => {
      const text = pick(random, ['{', '{"asset":', '[]', '{"asset":{"version":2}}', 'null', '{"asset":{}}', '\u00ff\u00fe']);
      return {
        label: `not-gltf/${JSON.stringify(text)}`,
        files: [{ name: seededName(random, token, '.gltf'), bytes: new TextEncoder().encode(text) }],
        expect: { kind: 'invalid', codes: [] },
      };
    },
    () =>
      pick(
        random,
        broken.map((c): Submission => ({ label: `broken-again/${c.name}`, files: c.files, expect: { kind: 'invalid', codes: c.codes } })),
      ),
  ];

  for (const make of hostile) out.push(make());
  const gltfCases = valid.filter((c) => c.files.length > 1 && c.files.some((f) => f.name.endsWith('.gltf')));
  const variants = count - out.length;
  for (let i = 0; i < variants; i++) {
    const r = random();
    if (r < 0.1) {
      const c = pick(random, gltfCases);
      out.push({ label: `renamed-gltf/${c.name}`, files: renameGltf(c.files, random, token), expect: { kind: 'valid' } });
    } else if (r < 0.5) {
      const c = pick(random, glbCases);
      out.push({
        label: `renamed/${c.name}`,
        files: [{ name: seededName(random, token, '.glb'), bytes: c.files[0]!.bytes }],
        expect: { kind: 'valid' },
      });
    } else if (r < 0.85) out.push(pick(random, invalid)());
    else out.push(pick(random, hostile)());
  }
  return shuffle(out, random);
}

/** A multi-file .gltf with every file renamed (seeded, in many scripts) and its URIs rewritten, percent-encoded, to match. */
function renameGltf(files: UploadFile[], random: () => number, token: string): UploadFile[] {
  const main = files.find((f) => f.name.endsWith('.gltf'))!;
  const others = files.filter((f) => f !== main);
  const renames = new Map(others.map((f, i) => [f.name, seededName(random, token, `-${i}${path.extname(f.name)}`)]));
  const json = JSON.parse(new TextDecoder().decode(main.bytes)) as GLTF.IGLTF;
  for (const resource of [...(json.buffers ?? []), ...(json.images ?? [])]) {
    const renamed = resource.uri && !resource.uri.startsWith('data:') ? renames.get(decodeURIComponent(resource.uri)) : undefined;
    if (renamed) resource.uri = encodeURIComponent(renamed);
  }
  return [
    { name: seededName(random, token, '.gltf'), bytes: new TextEncoder().encode(JSON.stringify(json)) },
    ...others.map((f) => ({ name: renames.get(f.name)!, bytes: f.bytes })),
  ];
}

function shuffle<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}
