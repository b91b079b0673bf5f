import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const webDir = path.dirname(fileURLToPath(import.meta.url));

/** Where the page's KTX2Loader finds the Basis Universal transcoder (model-viewer.ts). */
const BASIS_URL_DIR = 'basis';
const BASIS_FILES = ['basis_transcoder.js', 'basis_transcoder.wasm'];
const BASIS_SOURCE_DIR = path.dirname(createRequire(import.meta.url).resolve('three/examples/jsm/libs/basis/basis_transcoder.js'));

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
    },
    configureServer(server) {
      server.middlewares.use(`/${BASIS_URL_DIR}`, (req, res, next) => {
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
