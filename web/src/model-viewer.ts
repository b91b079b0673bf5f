import * as THREE from 'three';
import { OrbitControls } from 'three/examples/jsm/controls/OrbitControls.js';
import { DRACOLoader } from 'three/examples/jsm/loaders/DRACOLoader.js';
import { GLTFLoader } from 'three/examples/jsm/loaders/GLTFLoader.js';
import { KTX2Loader } from 'three/examples/jsm/loaders/KTX2Loader.js';
import { MeshoptDecoder } from 'three/examples/jsm/libs/meshopt_decoder.module.js';

/** A model to show: a GLB's bytes, or a .gltf with its resources as the artist picked them. */
export type ModelSource = { kind: 'glb'; bytes: ArrayBuffer } | { kind: 'files'; files: File[] };

/**
 * KTX2Loader starts its transcoder workers from a blob: URL, which inherits this page's CSP; the Basis
 * transcoder's Emscripten bindings compile with `new Function`, which that CSP refuses, so the texture never
 * arrives. The build emits the same worker script as /basis/ktx2-worker.js (web/vite.config.ts), served with
 * a CSP of its own (api/app.ts): the workers start from there, and the page's CSP stays as strict as it is.
 */
function withServedWorker(loader: KTX2Loader): KTX2Loader {
  const init = loader.init.bind(loader);
  loader.init = async () => {
    await init();
    loader.workerPool.setWorkerCreator(() => {
      const worker = new Worker('/basis/ktx2-worker.js');
      const transcoderBinary = loader.transcoderBinary!.slice(0);
      worker.postMessage({ type: 'init', config: loader.workerConfig, transcoderBinary }, [transcoderBinary]);
      return worker;
    });
  };
  return loader;
}

/** One canvas with its camera, orbit controls and the model shown in it. */
class ModelPane {
  readonly renderer: THREE.WebGLRenderer;
  readonly camera = new THREE.PerspectiveCamera(45, 1, 0.01, 1000);
  readonly controls: OrbitControls;
  private readonly scene = new THREE.Scene();
  private model: THREE.Object3D | null = null;
  private readonly loader: GLTFLoader;
  private readonly ktx2: KTX2Loader;

  constructor(readonly canvas: HTMLCanvasElement) {
    // preserveDrawingBuffer so the browser tests (and a screenshot) read what was last drawn.
    this.renderer = new THREE.WebGLRenderer({ canvas, antialias: true, preserveDrawingBuffer: true });
    this.renderer.setPixelRatio(Math.min(2, window.devicePixelRatio));
    this.scene.background = new THREE.Color(0x2a3038);
    this.scene.add(new THREE.HemisphereLight(0xffffff, 0x445566, 2.2));
    const sun = new THREE.DirectionalLight(0xffffff, 2);
    sun.position.set(3, 5, 4);
    this.scene.add(sun);
    this.controls = new OrbitControls(this.camera, canvas);
    // Arrow keys pan the focused canvas, for artists who do not use a mouse.
    this.controls.listenToKeyEvents(canvas);
    // KHR_texture_basisu (textureFormat ktx2): the Basis transcoder is served by the app under /basis/ (the
    // build's base is /; web/vite.config.ts copies it from three.js into the build), never from a CDN.
    this.ktx2 = withServedWorker(new KTX2Loader().setTranscoderPath('/basis/').detectSupport(this.renderer));
    this.loader = new GLTFLoader()
      .setMeshoptDecoder(MeshoptDecoder)
      // Without a path set, the Draco decoder loads from files next to the page.
      .setDRACOLoader(new DRACOLoader())
      .setKTX2Loader(this.ktx2);
  }

  async show(source: ModelSource): Promise<void> {
    const gltf = source.kind === 'glb' ? await this.loader.parseAsync(source.bytes, '') : await this.loadFiles(source.files);
    if (this.model) this.scene.remove(this.model);
    this.model = gltf.scene;
    this.scene.add(gltf.scene);
  }

  /** A .gltf refers to its .bin and images by name: those names are mapped to the picked files. */
  private async loadFiles(files: File[]): Promise<{ scene: THREE.Group }> {
    const urls = new Map(files.map((f) => [f.name, URL.createObjectURL(f)]));
    const main = files.find((f) => /\.(gltf|glb)$/i.test(f.name));
    if (!main) throw new Error('no model file');
    const manager = new THREE.LoadingManager();
    manager.setURLModifier((url) => urls.get(decodeURIComponent(url.split('/').pop() ?? '')) ?? url);
    const loader = new GLTFLoader(manager).setMeshoptDecoder(MeshoptDecoder).setKTX2Loader(this.ktx2);
    try {
      return await loader.loadAsync(urls.get(main.name)!);
    } finally {
      for (const url of urls.values()) URL.revokeObjectURL(url);
    }
  }

  /** Frames the model: both panes then share this view. */
  frame(): void {
    if (!this.model) return;
    const box = new THREE.Box3().setFromObject(this.model);
    const size = box.getSize(new THREE.Vector3()).length() || 1;
    const center = box.getCenter(new THREE.Vector3());
    this.controls.target.copy(center);
    this.camera.near = size / 100;
    this.camera.far = size * 100;
    this.camera.position.copy(center).add(new THREE.Vector3(0.6, 0.45, 0.8).multiplyScalar(size * 1.1));
    this.camera.updateProjectionMatrix();
    this.controls.update();
  }

  render(): void {
    const { clientWidth: w, clientHeight: h } = this.canvas;
    if (w > 0 && h > 0 && (this.canvas.width !== Math.round(w * this.renderer.getPixelRatio()) || this.camera.aspect !== w / h)) {
      this.renderer.setSize(w, h, false);
      this.camera.aspect = w / h;
      this.camera.updateProjectionMatrix();
    }
    this.renderer.render(this.scene, this.camera);
  }

  dispose(): void {
    this.controls.dispose();
    this.renderer.dispose();
  }
}

/**
 * Original and optimised side by side, with one shared camera: orbiting either pane moves both, so the
 * artist compares the same view. Draws only when something changed.
 */
export class ComparisonViewer {
  private readonly panes: [ModelPane, ModelPane];
  private syncing = false;

  constructor(original: HTMLCanvasElement, optimised: HTMLCanvasElement) {
    this.panes = [new ModelPane(original), new ModelPane(optimised)];
    for (const [i, pane] of this.panes.entries()) {
      const other = this.panes[1 - i]!;
      pane.controls.addEventListener('change', () => {
        if (this.syncing) return;
        this.syncing = true;
        other.camera.position.copy(pane.camera.position);
        other.controls.target.copy(pane.controls.target);
        other.controls.update();
        this.syncing = false;
        this.draw();
      });
    }
  }

  async showOriginal(source: ModelSource): Promise<void> {
    await this.panes[0].show(source);
    this.panes[0].frame();
    this.draw();
  }

  async showOptimised(source: ModelSource): Promise<void> {
    await this.panes[1].show(source);
    // Frame from the original when there is one, so both show the same view.
    this.panes[1].frame();
    this.draw();
  }

  draw(): void {
    for (const pane of this.panes) pane.render();
  }

  dispose(): void {
    for (const pane of this.panes) pane.dispose();
  }
}
