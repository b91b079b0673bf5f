import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Accessor, Document, type GLTF, type NodeIO, type Primitive, type Texture, VertexLayout } from '@gltf-transform/core';
import {
  EXTMeshGPUInstancing,
  EXTMeshoptCompression,
  EXTTextureAVIF,
  EXTTextureWebP,
  KHRDracoMeshCompression,
  KHRLightsPunctual,
  KHRMaterialsAnisotropy,
  KHRMaterialsClearcoat,
  KHRMaterialsDiffuseTransmission,
  KHRMaterialsDispersion,
  KHRMaterialsEmissiveStrength,
  KHRMaterialsIOR,
  KHRMaterialsIridescence,
  KHRMaterialsPBRSpecularGlossiness,
  KHRMaterialsSheen,
  KHRMaterialsSpecular,
  KHRMaterialsTransmission,
  KHRMaterialsUnlit,
  KHRMaterialsVariants,
  KHRMaterialsVolume,
  KHRTextureBasisu,
  KHRTextureTransform,
} from '@gltf-transform/extensions';
import { quantize } from '@gltf-transform/functions';
import sharp from 'sharp';
import { seededRandom } from '../../bench/assets/seeded-random.js';
import { PROJECT_ROOT } from '../../common/config.js';
import { assetIO } from '../../activities/asset-io.js';
import { type BasisCodec, encodeKtx2 } from '../../activities/tools/basisu.js';

/**
 * A generated corpus of glTF inputs for the pipeline's real-world tests (issue 17): valid files covering
 * the spec's variety, and broken variants that must fail on their first attempt with validator codes.
 * Everything is generated in code from a fixed seed, so the same bytes come out on every machine; the
 * files are cached under .cache/asset-corpus/<digest of this generator's version>/.
 */

/** What an input carries that every output must keep (or the report must name as dropped). */
export interface CarriedFeatures {
  animations: number;
  skins: number;
  morphTargets: number;
  cameras: number;
  lights: number;
  vertexColors: number;
  extraUvSets: number;
  textureTransforms: number;
  unlitMaterials: number;
}

export interface CorpusCase {
  name: string;
  /** File name → bytes; the one .gltf/.glb is the main file. */
  files: Record<string, Uint8Array>;
}

export interface BrokenCase extends CorpusCase {
  /** At least one of these codes must be among the failure's details. */
  expectCodes: string[];
}

export { seededRandom };

const GL = { POINTS: 0, LINES: 1, LINE_LOOP: 2, LINE_STRIP: 3, TRIANGLES: 4, TRIANGLE_STRIP: 5, TRIANGLE_FAN: 6 } as const;

/** A one-quad card (two triangles, UVs, 16-bit indices), the commonest small asset in games. */
export function quadDocument(): { doc: Document; prim: Primitive } {
  const doc = new Document();
  const buffer = doc.createBuffer();
  const position = doc
    .createAccessor()
    .setType('VEC3')
    .setArray(new Float32Array([0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 1, 0]))
    .setBuffer(buffer);
  const uv = doc
    .createAccessor()
    .setType('VEC2')
    .setArray(new Float32Array([0, 1, 1, 1, 1, 0, 0, 0]))
    .setBuffer(buffer);
  const indices = doc
    .createAccessor()
    .setType('SCALAR')
    .setArray(new Uint16Array([0, 1, 2, 0, 2, 3]))
    .setBuffer(buffer);
  const prim = doc.createPrimitive().setAttribute('POSITION', position).setAttribute('TEXCOORD_0', uv).setIndices(indices);
  doc.createScene().addChild(doc.createNode('card').setMesh(doc.createMesh('card').addPrimitive(prim)));
  return { doc, prim };
}

/** A w×h grid of vertices in the XY plane, jittered by the seed: positions, normals, UVs. */
function grid(doc: Document, w: number, h: number, random: () => number) {
  const buffer = doc.getRoot().listBuffers()[0] ?? doc.createBuffer();
  const positions: number[] = [];
  const normals: number[] = [];
  const uvs: number[] = [];
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      positions.push(x / (w - 1), y / (h - 1), (random() - 0.5) * 0.05);
      normals.push(0, 0, 1);
      uvs.push(x / (w - 1), 1 - y / (h - 1));
    }
  const tri: number[] = [];
  for (let y = 0; y < h - 1; y++)
    for (let x = 0; x < w - 1; x++) {
      const i = y * w + x;
      tri.push(i, i + 1, i + w, i + 1, i + w + 1, i + w);
    }
  return {
    count: w * h,
    position: doc.createAccessor().setType('VEC3').setArray(new Float32Array(positions)).setBuffer(buffer),
    normal: doc.createAccessor().setType('VEC3').setArray(new Float32Array(normals)).setBuffer(buffer),
    uv: doc.createAccessor().setType('VEC2').setArray(new Float32Array(uvs)).setBuffer(buffer),
    triangles: tri,
    buffer,
  };
}

function indexAccessor(doc: Document, indices: number[], bits: 8 | 16 | 32 = 16): Accessor {
  const array = bits === 8 ? new Uint8Array(indices) : bits === 16 ? new Uint16Array(indices) : new Uint32Array(indices);
  return doc.createAccessor().setType('SCALAR').setArray(array).setBuffer(doc.getRoot().listBuffers()[0]!);
}

/** A document with one mesh of a textured-less jittered grid in one node of one scene. */
function gridDocument(random: () => number, w = 6, h = 6, build?: (doc: Document, prim: Primitive, g: ReturnType<typeof grid>) => void) {
  const doc = new Document();
  doc.createBuffer();
  const g = grid(doc, w, h, random);
  const prim = doc
    .createPrimitive()
    .setAttribute('POSITION', g.position)
    .setAttribute('NORMAL', g.normal)
    .setAttribute('TEXCOORD_0', g.uv)
    .setIndices(indexAccessor(doc, g.triangles));
  const mesh = doc.createMesh('grid').addPrimitive(prim);
  doc.createScene('scene').addChild(doc.createNode('grid').setMesh(mesh));
  build?.(doc, prim, g);
  return doc;
}

/** Image bytes of a seeded noise image in the given format. */
async function noiseImage(random: () => number, size: number, format: 'png' | 'jpeg' | 'webp'): Promise<Uint8Array> {
  const pixels = Buffer.alloc(size * size * 4);
  for (let i = 0; i < pixels.length; i++) pixels[i] = i % 4 === 3 ? 255 : Math.floor(random() * 256);
  const image = sharp(pixels, { raw: { width: size, height: size, channels: 4 } });
  const encoded = format === 'png' ? image.png() : format === 'jpeg' ? image.jpeg({ quality: 90 }) : image.webp({ quality: 90 });
  return new Uint8Array(await encoded.toBuffer());
}

/** A KHR_texture_basisu image (KTX2, full mip chain) of seeded noise, made by the basisu the pipeline itself runs. */
async function noiseKtx2(random: () => number, size: number, codec: BasisCodec, srgb: boolean): Promise<Uint8Array> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'asset-farm-corpus-ktx2-'));
  try {
    const input = path.join(dir, 'in.png');
    const output = path.join(dir, 'out.ktx2');
    await fs.writeFile(input, await noiseImage(random, size, 'png'));
    await encodeKtx2({ input, output, codec, srgb, quality: 80, normalMap: !srgb });
    return new Uint8Array(await fs.readFile(output));
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
}

function textureOf(doc: Document, image: Uint8Array, mimeType: string, name: string): Texture {
  return doc.createTexture(name).setImage(image).setMimeType(mimeType);
}

type Build = (random: () => number) => Promise<Document> | Document;

/** Valid inputs, by name: each is written as a GLB unless its name ends in .gltf. */
const VALID_BUILDS: Record<string, Build> = {
  'one-triangle': () => {
    const doc = new Document();
    const buffer = doc.createBuffer();
    const position = doc
      .createAccessor()
      .setType('VEC3')
      .setArray(new Float32Array([0, 0, 0, 1, 0, 0, 0, 1, 0]))
      .setBuffer(buffer);
    doc
      .createScene()
      .addChild(doc.createNode().setMesh(doc.createMesh().addPrimitive(doc.createPrimitive().setAttribute('POSITION', position))));
    return doc;
  },
  quad: () => quadDocument().doc,
  'no-indices': (random) =>
    gridDocument(random, 4, 4, (doc, prim, g) => {
      const flat = g.triangles.flatMap((i) => [...g.position.getElement(i, [])]);
      prim.setIndices(null).setAttribute('NORMAL', null).setAttribute('TEXCOORD_0', null);
      prim.setAttribute('POSITION', doc.createAccessor().setType('VEC3').setArray(new Float32Array(flat)).setBuffer(g.buffer));
    }),
  'indices-8-bit': (random) => gridDocument(random, 5, 5, (doc, prim, g) => prim.setIndices(indexAccessor(doc, g.triangles, 8))),
  'indices-32-bit': (random) => gridDocument(random, 5, 5, (doc, prim, g) => prim.setIndices(indexAccessor(doc, g.triangles, 32))),
  'mode-points': (random) => gridDocument(random, 5, 5, (_doc, prim) => prim.setIndices(null).setMode(GL.POINTS)),
  'mode-lines': (random) => gridDocument(random, 4, 4, (_doc, prim) => prim.setMode(GL.LINES)),
  'mode-line-loop': (random) => gridDocument(random, 4, 4, (_doc, prim) => prim.setIndices(null).setMode(GL.LINE_LOOP)),
  'mode-line-strip': (random) => gridDocument(random, 4, 4, (_doc, prim) => prim.setIndices(null).setMode(GL.LINE_STRIP)),
  'mode-triangle-strip': (random) =>
    gridDocument(random, 4, 2, (doc, prim) => prim.setIndices(indexAccessor(doc, [0, 4, 1, 5, 2, 6, 3, 7])).setMode(GL.TRIANGLE_STRIP)),
  'mode-triangle-fan': (random) =>
    gridDocument(random, 3, 3, (doc, prim) => prim.setIndices(indexAccessor(doc, [4, 0, 1, 2, 5, 8, 7, 6, 3, 0])).setMode(GL.TRIANGLE_FAN)),
  'sparse-accessor': (random) =>
    gridDocument(random, 6, 6, (doc, prim, g) => {
      // Mostly zeros with a few displaced vertices: what exporters write sparse.
      const heights = new Float32Array(g.count * 3);
      for (let i = 0; i < 4; i++) heights[Math.floor(random() * g.count) * 3 + 2] = random();
      const sparse = doc.createAccessor().setType('VEC3').setArray(heights).setSparse(true).setBuffer(g.buffer);
      prim.addTarget(doc.createPrimitiveTarget().setAttribute('POSITION', sparse));
      doc.getRoot().listMeshes()[0]!.setWeights([0.5]);
    }),
  'separate-vertex-buffers': (random) => gridDocument(random, 5, 5),
  'uv-sets-and-colors': (random) =>
    gridDocument(random, 5, 5, (doc, prim, g) => {
      const uv1 = doc
        .createAccessor()
        .setType('VEC2')
        .setArray(new Float32Array(g.uv.getArray()!).map((v) => v * 0.5))
        .setBuffer(g.buffer);
      const colors = new Uint8Array(g.count * 4).map((_, i) => (i % 4 === 3 ? 255 : Math.floor(random() * 256)));
      const color = doc.createAccessor().setType('VEC4').setArray(colors).setNormalized(true).setBuffer(g.buffer);
      prim.setAttribute('TEXCOORD_1', uv1).setAttribute('COLOR_0', color);
    }),
  'vec3-float-colors-no-normals': (random) =>
    gridDocument(random, 5, 5, (doc, prim, g) => {
      const colors = new Float32Array(g.count * 3).map(() => random());
      prim.setAttribute('NORMAL', null).setAttribute('COLOR_0', doc.createAccessor().setType('VEC3').setArray(colors).setBuffer(g.buffer));
    }),
  'with-tangents': (random) =>
    gridDocument(random, 5, 5, (doc, prim, g) => {
      const tangents = new Float32Array(g.count * 4).map((_, i) => [1, 0, 0, 1][i % 4]!);
      prim.setAttribute('TANGENT', doc.createAccessor().setType('VEC4').setArray(tangents).setBuffer(g.buffer));
    }),
  'no-position': (random) =>
    gridDocument(random, 4, 4, (doc, _prim, g) => {
      // A second primitive with no POSITION is valid glTF (an extension could supply it); engines skip it.
      const mesh = doc.getRoot().listMeshes()[0]!;
      mesh.addPrimitive(doc.createPrimitive().setAttribute('NORMAL', g.normal).setMode(GL.POINTS));
    }),
  'quantized-input': async (random) => {
    const doc = gridDocument(random, 6, 6);
    await doc.transform(quantize());
    return doc;
  },
  'textures-png-jpeg-webp': async (random) => {
    const doc = gridDocument(random, 5, 5);
    const png = textureOf(doc, await noiseImage(random, 32, 'png'), 'image/png', 'base.png');
    const jpeg = textureOf(doc, await noiseImage(random, 32, 'jpeg'), 'image/jpeg', 'rough.jpg');
    const webp = textureOf(doc, await noiseImage(random, 32, 'webp'), 'image/webp', 'emissive.webp');
    doc.createExtension(EXTTextureWebP).setRequired(true);
    const material = doc
      .createMaterial('textured')
      .setBaseColorTexture(png)
      .setMetallicRoughnessTexture(jpeg)
      .setEmissiveTexture(webp)
      .setEmissiveFactor([1, 1, 1]);
    material.getBaseColorTextureInfo()!.setWrapS(33071).setWrapT(33648).setMinFilter(9987).setMagFilter(9729);
    doc.getRoot().listMeshes()[0]!.listPrimitives()[0]!.setMaterial(material);
    return doc;
  },
  'texture-avif': async (random) => {
    const doc = gridDocument(random, 4, 4);
    const pixels = Buffer.alloc(16 * 16 * 4).map((_, i) => (i % 4 === 3 ? 255 : Math.floor(random() * 256)));
    const avif = new Uint8Array(
      await sharp(pixels, { raw: { width: 16, height: 16, channels: 4 } })
        .avif({ quality: 80 })
        .toBuffer(),
    );
    doc.createExtension(EXTTextureAVIF).setRequired(true);
    const material = doc.createMaterial('avif').setBaseColorTexture(textureOf(doc, avif, 'image/avif', 'albedo.avif'));
    doc.getRoot().listMeshes()[0]!.listPrimitives()[0]!.setMaterial(material);
    return doc;
  },
  // KTX2 input as engines' exporters write it: ETC1S colour, UASTC normal map, the extension required.
  'texture-ktx2': async (random) => {
    const doc = gridDocument(random, 4, 4);
    doc.createExtension(KHRTextureBasisu).setRequired(true);
    const material = doc
      .createMaterial('gpu-compressed')
      .setBaseColorTexture(textureOf(doc, await noiseKtx2(random, 32, 'etc1s', true), 'image/ktx2', 'albedo'))
      .setNormalTexture(textureOf(doc, await noiseKtx2(random, 32, 'uastc', false), 'image/ktx2', 'normal'));
    doc.getRoot().listMeshes()[0]!.listPrimitives()[0]!.setMaterial(material);
    return doc;
  },
  'texture-ktx2-external.gltf': async (random) => {
    const doc = gridDocument(random, 4, 4);
    doc.createExtension(KHRTextureBasisu).setRequired(true);
    const texture = textureOf(doc, await noiseKtx2(random, 16, 'uastc', true), 'image/ktx2', 'albedo').setURI('albedo.ktx2');
    doc.getRoot().listMeshes()[0]!.listPrimitives()[0]!.setMaterial(doc.createMaterial('gpu').setBaseColorTexture(texture));
    return doc;
  },
  'texture-transform': async (random) => {
    const doc = gridDocument(random, 5, 5);
    const texture = textureOf(doc, await noiseImage(random, 16, 'png'), 'image/png', 'tiled.png');
    const material = doc.createMaterial('tiled').setBaseColorTexture(texture);
    const transform = doc.createExtension(KHRTextureTransform).createTransform().setScale([4, 4]).setOffset([0.25, 0]).setRotation(0.3);
    material.getBaseColorTextureInfo()!.setExtension('KHR_texture_transform', transform);
    doc.getRoot().listMeshes()[0]!.listPrimitives()[0]!.setMaterial(material);
    return doc;
  },
  'materials-khr-all': async (random) => {
    const doc = gridDocument(random, 5, 5);
    const texture = textureOf(doc, await noiseImage(random, 16, 'png'), 'image/png', 'detail.png');
    const m = doc.createMaterial('everything').setBaseColorTexture(texture);
    m.setExtension('KHR_materials_clearcoat', doc.createExtension(KHRMaterialsClearcoat).createClearcoat().setClearcoatFactor(0.7));
    m.setExtension('KHR_materials_sheen', doc.createExtension(KHRMaterialsSheen).createSheen().setSheenColorFactor([1, 0.5, 0.2]));
    m.setExtension(
      'KHR_materials_transmission',
      doc.createExtension(KHRMaterialsTransmission).createTransmission().setTransmissionFactor(0.4),
    );
    m.setExtension('KHR_materials_volume', doc.createExtension(KHRMaterialsVolume).createVolume().setThicknessFactor(0.2));
    m.setExtension('KHR_materials_ior', doc.createExtension(KHRMaterialsIOR).createIOR().setIOR(1.45));
    m.setExtension('KHR_materials_specular', doc.createExtension(KHRMaterialsSpecular).createSpecular().setSpecularFactor(0.8));
    m.setExtension('KHR_materials_iridescence', doc.createExtension(KHRMaterialsIridescence).createIridescence().setIridescenceFactor(0.5));
    m.setExtension(
      'KHR_materials_emissive_strength',
      doc.createExtension(KHRMaterialsEmissiveStrength).createEmissiveStrength().setEmissiveStrength(3),
    );
    m.setExtension('KHR_materials_anisotropy', doc.createExtension(KHRMaterialsAnisotropy).createAnisotropy().setAnisotropyStrength(0.5));
    m.setExtension('KHR_materials_dispersion', doc.createExtension(KHRMaterialsDispersion).createDispersion().setDispersion(0.1));
    m.setExtension(
      'KHR_materials_diffuse_transmission',
      doc.createExtension(KHRMaterialsDiffuseTransmission).createDiffuseTransmission().setDiffuseTransmissionFactor(0.3),
    );
    const second = doc.createMaterial('specgloss');
    second.setExtension(
      'KHR_materials_pbrSpecularGlossiness',
      doc.createExtension(KHRMaterialsPBRSpecularGlossiness).createPBRSpecularGlossiness().setGlossinessFactor(0.4),
    );
    const variants = doc.createExtension(KHRMaterialsVariants);
    const prim = doc.getRoot().listMeshes()[0]!.listPrimitives()[0]!.setMaterial(m);
    const mapping = variants
      .createMappingList()
      .addMapping(variants.createMapping().setMaterial(second).addVariant(variants.createVariant('alt')));
    prim.setExtension('KHR_materials_variants', mapping);
    return doc;
  },
  unlit: (random) =>
    gridDocument(random, 4, 4, (doc, prim) => {
      const m = doc.createMaterial('flat').setBaseColorFactor([1, 0.4, 0, 1]);
      m.setExtension('KHR_materials_unlit', doc.createExtension(KHRMaterialsUnlit).createUnlit());
      prim.setMaterial(m);
    }),
  'lights-and-cameras': (random) =>
    gridDocument(random, 4, 4, (doc) => {
      const lights = doc.createExtension(KHRLightsPunctual);
      const scene = doc.getRoot().listScenes()[0]!;
      const sun = doc
        .createNode('sun')
        .setExtension('KHR_lights_punctual', lights.createLight('sun').setType('directional').setIntensity(2));
      const spot = doc
        .createNode('spot')
        .setTranslation([0, 2, 0])
        .setExtension('KHR_lights_punctual', lights.createLight('spot').setType('spot').setRange(10).setColor([1, 0.8, 0.6]));
      const persp = doc.createNode('eye').setCamera(doc.createCamera('eye').setType('perspective').setYFov(0.8).setZNear(0.1).setZFar(100));
      const ortho = doc
        .createNode('top')
        .setCamera(doc.createCamera('top').setType('orthographic').setXMag(2).setYMag(2).setZNear(0.1).setZFar(10));
      scene.addChild(sun).addChild(spot).addChild(persp).addChild(ortho);
    }),
  'skin-and-animations': (random) =>
    gridDocument(random, 4, 4, (doc, prim, g) => {
      const scene = doc.getRoot().listScenes()[0]!;
      const meshNode = scene.listChildren()[0]!;
      const root = doc.createNode('root');
      const tip = doc.createNode('tip').setTranslation([0, 0.5, 0]);
      root.addChild(tip);
      scene.addChild(root);
      const ibm = doc
        .createAccessor()
        .setType('MAT4')
        .setArray(new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, -0.5, 0, 1]))
        .setBuffer(g.buffer);
      meshNode.setSkin(doc.createSkin('rig').addJoint(root).addJoint(tip).setInverseBindMatrices(ibm));
      const joints = new Uint8Array(g.count * 4).map((_, i) => (i % 4 === 1 ? 1 : 0));
      const weights = new Float32Array(g.count * 4);
      for (let v = 0; v < g.count; v++) {
        const w = g.position.getElement(v, [])[1]!;
        weights[v * 4] = 1 - w;
        weights[v * 4 + 1] = w;
      }
      prim.setAttribute('JOINTS_0', doc.createAccessor().setType('VEC4').setArray(joints).setBuffer(g.buffer));
      prim.setAttribute('WEIGHTS_0', doc.createAccessor().setType('VEC4').setArray(weights).setBuffer(g.buffer));
      const bump = new Float32Array(g.count * 3).map((_, i) => (i % 3 === 2 ? 0.1 : 0));
      prim.addTarget(
        doc.createPrimitiveTarget('bump').setAttribute('POSITION', doc.createAccessor().setType('VEC3').setArray(bump).setBuffer(g.buffer)),
      );
      meshNode.getMesh()!.setWeights([0]);
      const times = doc
        .createAccessor()
        .setType('SCALAR')
        .setArray(new Float32Array([0, 0.5, 1]))
        .setBuffer(g.buffer);
      const rotations = doc
        .createAccessor()
        .setType('VEC4')
        .setArray(new Float32Array([0, 0, 0, 1, 0, 0, 0.3826834, 0.9238795, 0, 0, 0, 1]))
        .setBuffer(g.buffer);
      const morph = doc
        .createAccessor()
        .setType('SCALAR')
        .setArray(new Float32Array([0, 1, 0]))
        .setBuffer(g.buffer);
      const bend = doc.createAnimation('bend');
      const s1 = doc.createAnimationSampler().setInput(times).setOutput(rotations).setInterpolation('LINEAR');
      const s2 = doc.createAnimationSampler().setInput(times).setOutput(morph).setInterpolation('STEP');
      bend.addSampler(s1).addSampler(s2);
      bend.addChannel(doc.createAnimationChannel().setTargetNode(tip).setTargetPath('rotation').setSampler(s1));
      bend.addChannel(doc.createAnimationChannel().setTargetNode(meshNode).setTargetPath('weights').setSampler(s2));
    }),
  // A plain node (no skin, no morph) animated in translation and scale, with cubic-spline keys.
  'node-animation': (random) =>
    gridDocument(random, 3, 3, (doc, _prim, g) => {
      const node = doc.getRoot().listScenes()[0]!.listChildren()[0]!;
      const times = doc
        .createAccessor()
        .setType('SCALAR')
        .setArray(new Float32Array([0, 1]))
        .setBuffer(g.buffer);
      // Cubic spline: in-tangent, value, out-tangent per key.
      const moves = doc
        .createAccessor()
        .setType('VEC3')
        .setArray(new Float32Array([0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]))
        .setBuffer(g.buffer);
      const scales = doc
        .createAccessor()
        .setType('VEC3')
        .setArray(new Float32Array([1, 1, 1, 2, 2, 2]))
        .setBuffer(g.buffer);
      const hop = doc.createAnimation('hop');
      const move = doc.createAnimationSampler().setInput(times).setOutput(moves).setInterpolation('CUBICSPLINE');
      const grow = doc.createAnimationSampler().setInput(times).setOutput(scales).setInterpolation('LINEAR');
      hop.addSampler(move).addSampler(grow);
      hop.addChannel(doc.createAnimationChannel().setTargetNode(node).setTargetPath('translation').setSampler(move));
      hop.addChannel(doc.createAnimationChannel().setTargetNode(node).setTargetPath('scale').setSampler(grow));
    }),
  'empty-nodes-and-scenes': (random) =>
    gridDocument(random, 4, 4, (doc) => {
      const scene = doc.getRoot().listScenes()[0]!;
      scene.addChild(doc.createNode('empty-a')).addChild(doc.createNode('group').addChild(doc.createNode('empty-b')));
      doc.createScene('only empties').addChild(doc.createNode('marker').setTranslation([1, 2, 3]));
    }),
  'scene-without-meshes': () => {
    const doc = new Document();
    doc.createScene('nothing').addChild(doc.createNode('locator'));
    return doc;
  },
  'deep-node-tree': (random) =>
    gridDocument(random, 3, 3, (doc) => {
      const scene = doc.getRoot().listScenes()[0]!;
      let parent = doc.createNode('level-0');
      scene.addChild(parent);
      for (let i = 1; i < 200; i++) {
        const child = doc.createNode(`level-${i}`).setTranslation([0.01, 0, 0]);
        parent.addChild(child);
        parent = child;
      }
      parent.setMesh(doc.getRoot().listMeshes()[0]!);
    }),
  instancing: (random) =>
    gridDocument(random, 3, 3, (doc, _prim, g) => {
      const instancing = doc.createExtension(EXTMeshGPUInstancing).setRequired(true);
      const translations = doc
        .createAccessor()
        .setType('VEC3')
        .setArray(new Float32Array([0, 0, 0, 2, 0, 0, 4, 0, 0]))
        .setBuffer(g.buffer);
      doc
        .getRoot()
        .listScenes()[0]!
        .listChildren()[0]!
        .setExtension('EXT_mesh_gpu_instancing', instancing.createInstancedMesh().setAttribute('TRANSLATION', translations));
    }),
  'meshopt-input': (random) => {
    const doc = gridDocument(random, 8, 8);
    doc
      .createExtension(EXTMeshoptCompression)
      .setRequired(true)
      .setEncoderOptions({ method: EXTMeshoptCompression.EncoderMethod.QUANTIZE });
    return doc;
  },
  'draco-input': (random) => {
    const doc = gridDocument(random, 8, 8);
    doc.createExtension(KHRDracoMeshCompression).setRequired(true);
    return doc;
  },
  // Exporters' "glTF Embedded": every buffer and image a data: URI inside the JSON.
  'embedded-data-uris.gltf': async (random) => {
    const doc = gridDocument(random, 4, 4);
    const texture = textureOf(doc, await noiseImage(random, 16, 'jpeg'), 'image/jpeg', 'photo');
    doc.getRoot().listMeshes()[0]!.listPrimitives()[0]!.setMaterial(doc.createMaterial('photo').setBaseColorTexture(texture));
    return doc;
  },
  // File names with spaces and a percent sign, referred to percent-encoded as URIs must be.
  'uri-percent-encoded.gltf': async (random) => {
    const doc = gridDocument(random, 4, 4);
    doc.getRoot().listBuffers()[0]!.setURI('geometry data.bin');
    const texture = textureOf(doc, await noiseImage(random, 16, 'png'), 'image/png', 'colour').setURI('base colour 100%.png');
    doc.getRoot().listMeshes()[0]!.listPrimitives()[0]!.setMaterial(doc.createMaterial('c').setBaseColorTexture(texture));
    return doc;
  },
  'multi-file-unicode.gltf': async (random) => {
    const doc = gridDocument(random, 5, 5);
    doc.getRoot().listBuffers()[0]!.setURI('геометрия.bin');
    const texture = textureOf(doc, await noiseImage(random, 16, 'png'), 'image/png', 'текстура').setURI('текстура.png');
    doc.getRoot().listMeshes()[0]!.listPrimitives()[0]!.setMaterial(doc.createMaterial('кожа').setBaseColorTexture(texture));
    return doc;
  },
};

/** Valid inputs that need their JSON or GLB bytes edited after writing (the Document API cannot say them). */
const VALID_EDITS: Record<string, { from: string; edit: (json: GLTF.IGLTF, context: EditContext) => void; glbPadding?: number }> = {
  // Found by probing what public sample files do (issue 17's check), each once a failure or an empty output.
  'meshes-without-nodes': {
    from: 'quad',
    edit: (json) => {
      delete json.nodes;
      delete json.scenes;
      delete json.scene;
    },
  },
  'empty-scene': { from: 'quad', edit: (json) => void json.scenes!.push({ name: 'unused' } as GLTF.IScene) },
  'skin-without-inverse-bind-matrices': {
    from: 'skin-and-animations',
    edit: (json) => {
      delete json.skins![0]!.inverseBindMatrices;
      json.skins![0]!.skeleton = json.skins![0]!.joints[0];
    },
  },
  'mesh-reused-by-nodes': {
    from: 'quad',
    edit: (json) => {
      json.nodes!.push({ mesh: 0, translation: [2, 0, 0] }, { mesh: 0, translation: [4, 0, 0], scale: [-1, 1, 1] });
      json.scenes![0]!.nodes.push(1, 2);
    },
  },
  'camera-infinite-far': {
    from: 'lights-and-cameras',
    edit: (json) => {
      for (const c of json.cameras ?? []) if (c.perspective) delete c.perspective.zfar;
    },
  },
  'extras-everywhere': {
    from: 'skin-and-animations',
    edit: (json) => {
      json.extras = { studio: { approved: true } };
      for (const n of json.nodes!) n.extras = { tag: n.name ?? 'node' };
      json.meshes![0]!.extras = { targetNames: ['bump'] };
    },
  },
  // An optional extension glTF-Validator knows and glTF-Transform does not: dropped, and the report says so.
  'animation-pointer-optional': {
    from: 'texture-transform',
    edit: (json, { floatsUri }) => {
      json.extensionsUsed = [...(json.extensionsUsed ?? []), 'KHR_animation_pointer'];
      json.buffers!.push({ uri: floatsUri, byteLength: 40 });
      const buffer = json.buffers!.length - 1;
      json.bufferViews!.push({ buffer, byteOffset: 0, byteLength: 8 }, { buffer, byteOffset: 8, byteLength: 32 });
      const view = json.bufferViews!.length - 2;
      const n = json.accessors!.length;
      json.accessors!.push(
        { bufferView: view, componentType: 5126, count: 2, type: 'SCALAR', min: [0], max: [1] },
        { bufferView: view + 1, componentType: 5126, count: 2, type: 'VEC4' },
      );
      const target = {
        path: 'pointer',
        extensions: { KHR_animation_pointer: { pointer: '/materials/0/pbrMetallicRoughness/baseColorFactor' } },
      };
      json.animations = [
        { samplers: [{ input: n, output: n + 1 }], channels: [{ sampler: 0, target: target as unknown as GLTF.IAnimationChannelTarget }] },
      ];
    },
  },
  // Metadata and visibility extensions glTF-Transform reads and writes: carried into every output.
  'xmp-metadata': {
    from: 'quad',
    edit: (json) => {
      json.extensionsUsed = [...(json.extensionsUsed ?? []), 'KHR_xmp_json_ld'];
      json.extensions = {
        KHR_xmp_json_ld: { packets: [{ '@context': { dc: 'http://purl.org/dc/elements/1.1/' }, 'dc:creator': { '@list': ['Ана'] } }] },
      };
      json.asset.extensions = { KHR_xmp_json_ld: { packet: 0 } };
    },
  },
  'node-visibility': {
    from: 'empty-nodes-and-scenes',
    edit: (json) => {
      json.extensionsUsed = [...(json.extensionsUsed ?? []), 'KHR_node_visibility'];
      json.nodes![0]!.extensions = { KHR_node_visibility: { visible: false } };
    },
  },
  // KTX2 with a PNG fallback, the extension optional: what exporters write for viewers without a transcoder.
  'ktx2-with-png-fallback': {
    from: 'texture-ktx2',
    edit: (json, { pngUri }) => {
      json.extensionsRequired = (json.extensionsRequired ?? []).filter((e) => e !== 'KHR_texture_basisu');
      if (!json.extensionsRequired.length) delete json.extensionsRequired;
      json.images!.push({ uri: pngUri, mimeType: 'image/png' });
      json.textures![0]!.source = json.images!.length - 1;
    },
  },
  'unknown-optional-extension': {
    from: 'quad',
    edit: (json) => {
      json.extensionsUsed = [...(json.extensionsUsed ?? []), 'EXT_studio_tags'];
      json.nodes![0]!.extensions = { EXT_studio_tags: { tags: ['hero'] } };
    },
  },
  'asset-version-2-1': {
    from: 'quad',
    edit: (json) => {
      json.asset.version = '2.1';
      json.asset.minVersion = '2.0';
    },
  },
  'glb-padding-after-chunks': { from: 'quad', edit: () => {}, glbPadding: 8 },
  'transform-texcoord-override': {
    from: 'texture-transform',
    edit: (json) => {
      const info = json.materials![0]!.pbrMetallicRoughness!.baseColorTexture!;
      (info.extensions!['KHR_texture_transform'] as { texCoord?: number }).texCoord = 0;
      // The same texture, transformed, in the normal, occlusion and emissive slots.
      json.materials![0]!.normalTexture = { ...info, scale: 1 };
      json.materials![0]!.occlusionTexture = { ...info, strength: 0.5 };
      json.materials![0]!.emissiveTexture = { index: info.index, extensions: { KHR_texture_transform: { offset: [0.5, 0] } } };
    },
  },
  'lights-declared-unused': {
    from: 'quad',
    edit: (json) => {
      json.extensionsUsed = [...(json.extensionsUsed ?? []), 'KHR_lights_punctual'];
    },
  },
  'node-matrix-no-scene': {
    from: 'quad',
    edit: (json) => {
      json.nodes![0]!.matrix = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 2, 3, 1];
      delete json.scene;
      delete json.scenes;
    },
  },
  'min-version-2-1': {
    from: 'quad',
    edit: (json) => {
      json.asset.version = '2.1';
      json.asset.minVersion = '2.1';
    },
  },
};

/** Bytes a JSON edit can refer to as data: URIs. */
interface EditContext {
  pngUri: string;
  /** Ten floats: two key times, then two RGBA values. */
  floatsUri: string;
}

/** Reassembles a GLB from its JSON (and the original BIN chunk), optionally with zero bytes after the chunks. */
export function rebuildGlb(glb: Uint8Array, edit: (json: GLTF.IGLTF) => void, padding = 0): Uint8Array {
  const view = new DataView(glb.buffer, glb.byteOffset, glb.byteLength);
  const jsonLength = view.getUint32(12, true);
  const json = JSON.parse(new TextDecoder().decode(glb.subarray(20, 20 + jsonLength))) as GLTF.IGLTF;
  edit(json);
  const rest = glb.subarray(20 + jsonLength);
  let text = JSON.stringify(json);
  // Padded in bytes, not characters: a non-ASCII name is several bytes.
  while (Buffer.byteLength(text) % 4) text += ' ';
  const jsonBytes = new TextEncoder().encode(text);
  const out = new Uint8Array(12 + 8 + jsonBytes.length + rest.length + padding);
  const o = new DataView(out.buffer);
  out.set(glb.subarray(0, 12));
  o.setUint32(8, out.length, true);
  o.setUint32(12, jsonBytes.length, true);
  o.setUint32(16, 0x4e4f534a, true);
  out.set(jsonBytes, 20);
  out.set(rest, 20 + jsonBytes.length);
  return out;
}

async function writeDocument(io: NodeIO, doc: Document, name: string, random: () => number): Promise<Record<string, Uint8Array>> {
  if (name.endsWith('separate-vertex-buffers')) io.setVertexLayout(VertexLayout.SEPARATE);
  try {
    if (!name.endsWith('.gltf')) return { [`${name}.glb`]: await io.writeBinary(doc) };
    const { json, resources } = await io.writeJSON(doc);
    void random;
    if (name === 'embedded-data-uris.gltf') {
      const embed = (r: { uri?: string; mimeType?: string }, type: string) => {
        if (r.uri) r.uri = `data:${type};base64,${Buffer.from(resources[r.uri]!).toString('base64')}`;
      };
      for (const buffer of json.buffers ?? []) embed(buffer, 'application/octet-stream');
      for (const image of json.images ?? []) embed(image, image.mimeType ?? 'image/jpeg');
      return { [name]: new TextEncoder().encode(JSON.stringify(json)) };
    }
    if (name === 'uri-percent-encoded.gltf') {
      // glTF-Transform writes the names as they are; a URI needs the space and the % encoded.
      for (const r of [...(json.buffers ?? []), ...(json.images ?? [])]) if (r.uri) r.uri = encodeURIComponent(r.uri);
      return { [name]: new TextEncoder().encode(JSON.stringify(json)), ...resources };
    }
    return {
      [name]: new TextEncoder().encode(JSON.stringify(json)),
      ...Object.fromEntries(Object.entries(resources).map(([uri, bytes]) => [decodeURIComponent(uri), bytes])),
    };
  } finally {
    io.setVertexLayout(VertexLayout.INTERLEAVED);
  }
}

/** Every valid case, generated (seeded by its name) with glTF-Transform's Document API. */
export async function generateValidCases(): Promise<CorpusCase[]> {
  const io = await assetIO();
  const cases: CorpusCase[] = [];
  for (const [name, build] of Object.entries(VALID_BUILDS)) {
    const random = seededRandom(seedOf(name));
    cases.push({ name, files: await writeDocument(io, await build(random), name, random) });
  }
  const png = await noiseImage(seededRandom(seedOf('fallback')), 8, 'png');
  const context: EditContext = {
    pngUri: `data:image/png;base64,${Buffer.from(png).toString('base64')}`,
    floatsUri: `data:application/octet-stream;base64,${Buffer.from(new Float32Array([0, 1, 1, 0, 0, 1, 0, 1, 0, 1]).buffer).toString('base64')}`,
  };
  for (const [name, { from, edit, glbPadding }] of Object.entries(VALID_EDITS)) {
    const source = cases.find((c) => c.name === from)!.files[`${from}.glb`]!;
    cases.push({ name, files: { [`${name}.glb`]: rebuildGlb(source, (json) => edit(json, context), glbPadding) } });
  }
  // Bytes after the GLB's declared end (some exporters pad files): the validator warns GLB_EXTRA_DATA only.
  const quad = cases.find((c) => c.name === 'quad')!.files['quad.glb']!;
  cases.push({ name: 'glb-extra-data', files: { 'glb-extra-data.glb': Buffer.concat([quad, new Uint8Array(12)]) } });
  return cases;
}

function seedOf(name: string): number {
  return createHash('sha256').update(name).digest().readUInt32LE(0);
}

/** A PNG whose header claims a huge image over a few bytes of data: the classic decompression bomb. */
export function pngBomb(width: number, height: number): Uint8Array {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (bytes: Uint8Array) => {
    let c = 0xffffffff;
    for (const b of bytes) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Uint8Array) => {
    const out = new Uint8Array(12 + data.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, data.length);
    out.set(new TextEncoder().encode(type), 4);
    out.set(data, 8);
    view.setUint32(8 + data.length, crc(out.subarray(4, 8 + data.length)));
    return out;
  };
  const ihdr = new Uint8Array(13);
  const h = new DataView(ihdr.buffer);
  h.setUint32(0, width);
  h.setUint32(4, height);
  ihdr.set([8, 6, 0, 0, 0], 8);
  const parts = [
    new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', new Uint8Array([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])),
    chunk('IEND', new Uint8Array()),
  ];
  return Buffer.concat(parts);
}

/** Broken variants of the valid cases: each must fail on its first attempt with one of expectCodes. */
export async function generateBrokenCases(valid: CorpusCase[]): Promise<BrokenCase[]> {
  const glbOf = (name: string) => valid.find((c) => c.name === name)!.files[`${name}.glb`]!;
  const random = seededRandom(17);
  const broken: BrokenCase[] = [];
  const edited = (name: string, from: string, edit: (json: GLTF.IGLTF) => void, expectCodes: string[]) =>
    broken.push({ name, files: { [`${name}.glb`]: rebuildGlb(glbOf(from), edit) }, expectCodes });
  broken.push({
    name: 'модель-обрезана',
    files: { 'модель-обрезана.glb': glbOf('quad').subarray(0, 300) },
    expectCodes: ['GLB_UNEXPECTED_END_OF_CHUNK_DATA', 'GLB_UNEXPECTED_END_OF_CHUNK_HEADER', 'GLB_LENGTH_MISMATCH'],
  });
  for (const from of ['quad', 'skin-and-animations', 'textures-png-jpeg-webp']) {
    const glb = glbOf(from);
    // Truncated at a seeded point past the header: the length no longer matches.
    const cut = 20 + Math.floor(random() * (glb.length - 24));
    broken.push({
      name: `${from}-truncated`,
      files: { [`${from}-truncated.glb`]: glb.subarray(0, cut) },
      expectCodes: ['GLB_LENGTH_MISMATCH', 'GLB_UNEXPECTED_END_OF_CHUNK_DATA', 'GLB_CHUNK_TOO_BIG', 'GLB_UNEXPECTED_END_OF_CHUNK_HEADER'],
    });
  }
  edited('accessor-out-of-range', 'quad', (json) => (json.meshes![0]!.primitives[0]!.attributes['POSITION'] = 99), [
    'UNRESOLVED_REFERENCE',
  ]);
  edited('buffer-view-too-long', 'quad', (json) => (json.bufferViews![0]!.byteLength += 4096), ['BUFFER_VIEW_TOO_LONG']);
  edited('accessor-offset-alignment', 'quad', (json) => (json.accessors![0]!.byteOffset = 2), [
    'ACCESSOR_OFFSET_ALIGNMENT',
    'ACCESSOR_TOO_LONG',
    'ACCESSOR_MIN_MISMATCH',
    'ACCESSOR_MAX_MISMATCH',
  ]);
  edited('node-cycle', 'empty-nodes-and-scenes', (json) => (json.nodes![json.nodes!.length - 1]!.children = [0]), [
    'NODE_LOOP',
    'NODE_PARENT_OVERRIDE',
    'SCENE_NON_ROOT_NODE',
  ]);
  edited('material-bad-ref', 'textures-png-jpeg-webp', (json) => (json.materials![0]!.pbrMetallicRoughness!.baseColorTexture!.index = 42), [
    'UNRESOLVED_REFERENCE',
  ]);
  edited(
    'required-extension-unknown',
    'quad',
    (json) => {
      json.extensionsUsed = ['EXT_studio_secret'];
      json.extensionsRequired = ['EXT_studio_secret'];
    },
    ['EXTENSION_NOT_PROCESSABLE'],
  );
  // JSON nested 100,000 deep in extras: a stack bomb for recursive readers.
  const bomb = '['.repeat(100_000) + ']'.repeat(100_000);
  broken.push({
    name: 'json-depth-bomb',
    files: { 'json-depth-bomb.gltf': new TextEncoder().encode(`{"asset":{"version":"2.0","extras":${bomb}}}`) },
    expectCodes: ['JSON_TOO_DEEP'],
  });
  // A chain of 50,000 nested nodes: glTF-Validator's recursion overflows the stack on it (crashing its thread).
  const chain = Array.from({ length: 50_000 }, (_, i) => (i < 49_999 ? { children: [i + 1] } : {}));
  broken.push({
    name: 'node-depth-bomb',
    files: {
      'node-depth-bomb.gltf': new TextEncoder().encode(
        JSON.stringify({ asset: { version: '2.0' }, nodes: chain, scenes: [{ nodes: [0] }] }),
      ),
    },
    expectCodes: ['NODES_TOO_DEEP'],
  });
  // A PNG declared as a KHR_texture_basisu KTX2 image: what a renaming tool or a broken exporter writes.
  edited(
    'ktx2-image-is-png',
    'textures-png-jpeg-webp',
    (json) => {
      json.images![0]!.mimeType = 'image/ktx2';
      json.textures![0] = { extensions: { KHR_texture_basisu: { source: 0 } } };
      json.extensionsUsed = [...(json.extensionsUsed ?? []), 'KHR_texture_basisu'];
      json.extensionsRequired = [...(json.extensionsRequired ?? []), 'KHR_texture_basisu'];
    },
    ['IMAGE_MIME_TYPE_INVALID', 'KTX2_INVALID'],
  );
  // Bytes that start as KTX2 and stop: the container check (ktx-parse) refuses what the validator cannot read.
  edited(
    'ktx2-truncated-image',
    'texture-ktx2',
    (json) => {
      json.bufferViews![json.images![0]!.bufferView!]!.byteLength = 40;
    },
    ['KTX2_INVALID'],
  );
  broken.push({
    name: 'not-json',
    files: { 'not-json.gltf': new TextEncoder().encode('{"asset": {"version": "2.0"') },
    expectCodes: ['INVALID_JSON'],
  });
  broken.push({
    name: 'random-bytes',
    files: { 'random-bytes.glb': new Uint8Array(256).map(() => Math.floor(random() * 256)) },
    expectCodes: ['GLB_INVALID_MAGIC'],
  });
  // A PNG claiming 40,000 × 40,000 pixels (6.4 GB decoded) in a few bytes.
  // The unicode multi-file case with its buffer URI pointed out of the upload, in each way a URI can leave it.
  const multi = valid.find((c) => c.name === 'multi-file-unicode.gltf')!.files;
  const multiJson = new TextDecoder().decode(multi['multi-file-unicode.gltf']!);
  const escapes = ['../геометрия.bin', '/etc/hostname', 'file:///etc/hostname', 'http://127.0.0.1:1/геометрия.bin', '%2E%2E/геометрия.bin'];
  for (const [n, uri] of escapes.entries()) {
    const name = `uri-escape-${n}.gltf`;
    const json = multiJson.replace('"uri":"геометрия.bin"', `"uri":${JSON.stringify(uri)}`);
    broken.push({ name, files: { ...multi, [name]: new TextEncoder().encode(json) }, expectCodes: ['URI_NOT_ALLOWED'] });
    delete broken.at(-1)!.files['multi-file-unicode.gltf'];
  }
  broken.push({
    name: 'png-decompression-bomb.gltf',
    files: { ...valid.find((c) => c.name === 'multi-file-unicode.gltf')!.files, 'текстура.png': pngBomb(40_000, 40_000) },
    expectCodes: ['TEXTURE_TOO_LARGE', 'IMAGE_DATA_INVALID', 'IMAGE_UNRECOGNIZED_FORMAT'],
  });
  return broken.map((b) => (b.name.endsWith('.gltf') ? { ...b, files: renameMain(b.files, b.name) } : b));
}

/** The multi-file cases keep their main file's own name. */
function renameMain(files: Record<string, Uint8Array>, name: string): Record<string, Uint8Array> {
  const entries = Object.entries(files).map(([file, bytes]): [string, Uint8Array] => [file.endsWith('.gltf') ? name : file, bytes]);
  return Object.fromEntries(entries);
}

/** Where generated corpora are cached (git-ignored), one folder per version of this generator. */
export const CORPUS_CACHE = path.join(PROJECT_ROOT, '.cache', 'asset-corpus');

/**
 * The corpus on disk: generated once per version of this file (its digest names the folder), then read
 * back. Returns each case with the paths of its files.
 */
export async function cachedCorpus(): Promise<{ valid: CachedCase[]; broken: (CachedCase & { expectCodes: string[] })[] }> {
  const source = await fs.readFile(fileURLToPath(import.meta.url));
  const dir = path.join(CORPUS_CACHE, createHash('sha256').update(source).digest('hex').slice(0, 16));
  const index = path.join(dir, 'index.json');
  const cached = await fs.readFile(index, 'utf8').then(
    (text) => JSON.parse(text) as Awaited<ReturnType<typeof cachedCorpus>>,
    () => null,
  );
  if (cached) return cached;
  // Corpora of earlier versions of this file are of no further use.
  for (const old of await fs.readdir(CORPUS_CACHE).catch(() => [] as string[]))
    if (old !== path.basename(dir)) await fs.rm(path.join(CORPUS_CACHE, old), { recursive: true, force: true });
  const valid = await generateValidCases();
  const broken = await generateBrokenCases(valid);
  const corpus = {
    valid: await Promise.all(valid.map(async (c) => ({ name: c.name, files: await writeCase(path.join(dir, 'valid'), c) }))),
    broken: await Promise.all(
      broken.map(async (c) => ({ name: c.name, files: await writeCase(path.join(dir, 'broken'), c), expectCodes: c.expectCodes })),
    ),
  };
  // Written last and renamed into place: a run interrupted while generating is regenerated next time.
  await fs.writeFile(`${index}.tmp`, JSON.stringify(corpus));
  await fs.rename(`${index}.tmp`, index);
  return corpus;
}

/** A case as cached: its name and the paths of its files. */
export interface CachedCase {
  name: string;
  files: string[];
}

/** Writes a case's files into dir/<case name>/ and returns their paths. */
export async function writeCase(dir: string, c: CorpusCase): Promise<string[]> {
  const caseDir = path.join(dir, c.name.replace(/\.gltf$/, ''));
  await fs.mkdir(caseDir, { recursive: true });
  return Promise.all(
    Object.entries(c.files).map(async ([name, bytes]) => {
      const file = path.join(caseDir, name);
      await fs.writeFile(file, bytes);
      return file;
    }),
  );
}
