import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Document, NodeIO } from '@gltf-transform/core';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProcessAssetInput } from '../common/jobs.js';
import { requestFor, SHARED_ASSETS, startPipelineFixture, type PipelineFixture } from '../test/helpers/pipeline-fixture.js';

/** A minimal one-triangle glTF JSON (positions, then UVs) whose buffer URI the test chooses. */
function gltfWith(bufferUri: string, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    asset: { version: '2.0' },
    buffers: [{ uri: bufferUri, byteLength: 60 }],
    bufferViews: [{ buffer: 0, byteLength: 60 }],
    accessors: [
      { bufferView: 0, componentType: 5126, count: 3, type: 'VEC3', min: [0, 0, 0], max: [1, 1, 0] },
      { bufferView: 0, byteOffset: 36, componentType: 5126, count: 3, type: 'VEC2' },
    ],
    meshes: [{ primitives: [{ attributes: { POSITION: 0 } }] }],
    nodes: [{ mesh: 0 }],
    scenes: [{ nodes: [0] }],
    scene: 0,
    ...extra,
  });
}

const TRIANGLE = Buffer.from(new Float32Array([0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1]).buffer);
const TRIANGLE_URI = `data:application/octet-stream;base64,${TRIANGLE.toString('base64')}`;

/** Expects an activity to fail as non-retryable InvalidAsset, and returns the failure for closer checks. */
async function expectInvalidAsset(run: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await run.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  const failure = err as ApplicationFailure;
  expect(failure.type).toBe('INVALID_ASSET');
  expect(failure.nonRetryable).toBe(true);
  expect(failure.details?.length).toBeGreaterThan(0);
  for (const detail of failure.details ?? [])
    expect(detail).toMatchObject({ code: expect.any(String), message: expect.any(String), severity: 'error' });
  return failure;
}

describe('untrusted uploads', () => {
  let fx: PipelineFixture;
  let corpus: string;
  beforeAll(async () => {
    fx = await startPipelineFixture();
    corpus = mkdtempSync(path.join(os.tmpdir(), 'asset-farm-corpus-'));
  });
  afterAll(async () => {
    await fx?.stop();
    rmSync(corpus, { recursive: true, force: true });
  });

  /** Writes files into the corpus folder and uploads them as one asset. */
  async function uploadFiles(files: Record<string, string | Uint8Array>): Promise<ProcessAssetInput> {
    const dir = await fs.mkdtemp(path.join(corpus, 'case-'));
    for (const [name, content] of Object.entries(files)) writeFileSync(path.join(dir, name), content);
    return fx.upload(Object.keys(files).map((name) => path.join(dir, name)));
  }

  describe('URIs that leave the upload are refused before anything reads them', () => {
    const escapes = {
      'parent folder': '../secret.bin',
      'absolute path': '/etc/hostname',
      'file: URL': 'file:///etc/hostname',
      'http: URL': 'http://127.0.0.1:1/model.bin',
      'encoded parent folder': '%2E%2E/secret.bin',
    };
    for (const [what, uri] of Object.entries(escapes)) {
      it(`refuses a buffer at ${what}`, async () => {
        const input = await uploadFiles({ 'escape.gltf': gltfWith(uri) });
        const jobId = `asset-alice-escape-${what.replace(/\W+/g, '-')}`;
        const failure = await expectInvalidAsset(fx.envFor(jobId).run(fx.activities.validateAsset, requestFor(input)));
        expect(failure.details?.[0]).toMatchObject({ code: 'URI_NOT_ALLOWED' });
        expect(failure.message).toContain(uri);
      });
    }

    it('refuses it in inspect too, and accepts data: URIs and the upload’s own files', async () => {
      const escape = await uploadFiles({ 'escape.gltf': gltfWith('../secret.bin') });
      await expectInvalidAsset(fx.envFor('asset-alice-escape-inspect').run(fx.activities.inspectAsset, requestFor(escape)));
      const embedded = await uploadFiles({ 'embedded.gltf': gltfWith(TRIANGLE_URI) });
      await expect(fx.envFor('asset-alice-embedded').run(fx.activities.inspectAsset, requestFor(embedded))).resolves.toMatchObject({
        triangles: 1,
      });
      const own = await uploadFiles({ 'own.gltf': gltfWith('tri.bin'), 'tri.bin': TRIANGLE });
      await expect(fx.envFor('asset-alice-own').run(fx.activities.validateAsset, requestFor(own))).resolves.toMatchObject({ errors: 0 });
    });
  });

  describe('malformed files end as InvalidAsset, never a crash or a retry', () => {
    async function twoCubes(): Promise<Buffer> {
      return fs.readFile(path.join(SHARED_ASSETS, 'TwoCubes.glb'));
    }
    async function nanPositions(): Promise<Uint8Array> {
      const doc = new Document();
      const buffer = doc.createBuffer();
      const position = doc
        .createAccessor()
        .setType('VEC3')
        .setArray(new Float32Array([0, 0, 0, NaN, 0, 0, 0, 1, 0]))
        .setBuffer(buffer);
      const mesh = doc.createMesh().addPrimitive(doc.createPrimitive().setAttribute('POSITION', position));
      doc.createScene().addChild(doc.createNode().setMesh(mesh));
      return new NodeIO().writeBinary(doc);
    }

    const cases: Record<string, [code: string, make: () => Promise<Record<string, string | Uint8Array>>]> = {
      // The validator's own codes, with its byte offset: it speaks before any reader.
      'a truncated GLB': ['GLB_UNEXPECTED_END_OF_CHUNK_DATA', async () => ({ 'cut.glb': (await twoCubes()).subarray(0, 1200) })],
      'a GLB with the wrong magic': [
        'GLB_INVALID_MAGIC',
        async () => {
          const bytes = Buffer.from(await twoCubes());
          bytes.write('nope', 0, 'latin1');
          return { 'magic.glb': bytes };
        },
      ],
      'a GLB whose JSON chunk length is wrong': [
        'GLB_CHUNK_LENGTH_UNALIGNED',
        async () => {
          const bytes = Buffer.from(await twoCubes());
          bytes.writeUInt32LE(0x7fffffff, 12);
          return { 'chunk.glb': bytes };
        },
      ],
      'JSON that is not glTF': ['UNDEFINED_PROPERTY', async () => ({ 'hello.gltf': JSON.stringify({ hello: 'world', meshes: 3 }) })],
      'NaN vertex positions': ['ACCESSOR_INVALID_FLOAT', async () => ({ 'nan.glb': await nanPositions() })],
      'an accessor reaching past its buffer': [
        'ACCESSOR_TOO_LONG',
        async () => ({
          'oob.gltf': gltfWith(TRIANGLE_URI, {
            accessors: [{ bufferView: 0, componentType: 5126, count: 300, type: 'VEC3', min: [0, 0, 0], max: [1, 1, 0] }],
          }),
        }),
      ],
      'an image that is not an image': [
        'IMAGE_UNRECOGNIZED_FORMAT',
        async () => ({
          'fake.gltf': gltfWith('tri.bin', {
            images: [{ uri: 'fake.png' }],
            textures: [{ source: 0 }],
            materials: [{ pbrMetallicRoughness: { baseColorTexture: { index: 0 } } }],
            meshes: [{ primitives: [{ attributes: { POSITION: 0, TEXCOORD_0: 1 }, material: 0 }] }],
          }),
          'tri.bin': TRIANGLE,
          'fake.png': 'this is a text file, not a PNG',
        }),
      ],
    };

    for (const [what, [code, make]] of Object.entries(cases)) {
      it(`rejects ${what}`, async () => {
        const input = await uploadFiles(await make());
        const jobId = `asset-alice-bad-${what.replace(/\W+/g, '-')}`;
        const env = fx.envFor(jobId);
        const failure = await expectInvalidAsset(env.run(fx.activities.validateAsset, requestFor(input)));
        expect(failure.details?.map((d) => (d as { code: string }).code)).toContain(code);
        // Inspect runs first in the workflow and runs the validator before any reader: the same verdict.
        const inspected = await expectInvalidAsset(env.run(fx.activities.inspectAsset, requestFor(input)));
        expect(inspected.details?.map((d) => (d as { code: string }).code)).toContain(code);
      });
    }
  });
});
