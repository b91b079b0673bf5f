import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KTX2Loader } from 'three/examples/jsm/loaders/KTX2Loader.js';
import { defineConfig, type Plugin } from 'vite';

const webDir = path.dirname(fileURLToPath(import.meta.url));

/** Where the page's KTX2Loader finds the Basis Universal transcoder (model-viewer.ts). */
const BASIS_URL_DIR = 'basis';
const BASIS_FILES = ['basis_transcoder.js', 'basis_transcoder.wasm'];
const BASIS_SOURCE_DIR = path.dirname(createRequire(import.meta.url).resolve('three/examples/jsm/libs/basis/basis_transcoder.js'));
/** KTX2Loader's worker script, served from the app (see basisWorkerScript). */
const BASIS_WORKER = 'ktx2-worker.js';

/**
 * The script three's KTX2Loader builds at run time for its transcoder workers, built here the same way
 * (its constants, the transcoder, its worker function's body). KTX2Loader starts it from a blob: URL, which
 * inherits the page's CSP, and the transcoder's Emscripten bindings need `new Function`, which that CSP
 * refuses; started from this served file instead, the worker gets its own CSP (api/app.ts), the page keeps its.
 */
function basisWorkerScript(): string {
  const fn = KTX2Loader.BasisWorker.toString();
  return [
    `let _EngineFormat = ${JSON.stringify(KTX2Loader.EngineFormat)}`,
    `let _EngineType = ${JSON.stringify(KTX2Loader.EngineType)}`,
    `let _TranscoderFormat = ${JSON.stringify(KTX2Loader.TranscoderFormat)}`,
    `let _BasisFormat = ${JSON.stringify(KTX2Loader.BasisFormat)}`,
    fs.readFileSync(path.join(BASIS_SOURCE_DIR, 'basis_transcoder.js'), 'utf8'),
    fn.substring(fn.indexOf('{') + 1, fn.lastIndexOf('}')),
  ].join('\n');
}

/**
 * three.js's Basis transcoder, which KTX2Loader fetches at run time (KHR_texture_basisu outputs), emitted
 * into the build under /basis/ and served from node_modules by the dev server: the app serves it, no CDN.
 */
function basisTranscoder(): Plugin {
  return {
    name: 'asset-farm-basis-transcoder',
    generateBundle() {
      for (const file of BASIS_FILES) {
        this.emitFile({ type: 'asset', fileName: `${BASIS_URL_DIR}/${file}`, source: fs.readFileSync(path.join(BASIS_SOURCE_DIR, file)) });
      }
      this.emitFile({ type: 'asset', fileName: `${BASIS_URL_DIR}/${BASIS_WORKER}`, source: basisWorkerScript() });
    },
    configureServer(server) {
      server.middlewares.use(`/${BASIS_URL_DIR}`, (req, res, next) => {
        if (req.url === `/${BASIS_WORKER}`) {
          res.setHeader('Content-Type', 'text/javascript');
          res.end(basisWorkerScript());
          return;
        }
        const file = BASIS_FILES.find((f) => req.url === `/${f}`);
        if (!file) return next();
        res.setHeader('Content-Type', file.endsWith('.wasm') ? 'application/wasm' : 'text/javascript');
        fs.createReadStream(path.join(BASIS_SOURCE_DIR, file)).pipe(res);
      });
    },
  };
}

export default defineConfig({
  root: webDir,
  plugins: [basisTranscoder()],
  publicDir: path.join(webDir, 'public'),
  // Served by the API at /, next to /api and /ws.
  base: '/',
  build: {
    outDir: path.join(webDir, 'dist'),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    // three.js (with its Draco/Basis decoders, which it emits as local files: no CDN) loads only with the 3D view.
    chunkSizeWarningLimit: 800,
    rollupOptions: {
      onwarn(warning, warn) {
        // zod ships comments Rollup cannot place; harmless, and noise in every test run.
        if (warning.code === 'INVALID_ANNOTATION' && warning.id?.includes('node_modules/zod/')) return;
        warn(warning);
      },
    },
  },
  server: {
    // `npx vite --config web/vite.config.ts` during development, with the API on API_PORT (default 3000).
    proxy: {
      '/api': `http://127.0.0.1:${process.env.API_PORT ?? 3000}`,
      '/ws': { target: `ws://127.0.0.1:${process.env.API_PORT ?? 3000}`, ws: true },
    },
  },
});
