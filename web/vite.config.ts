import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const webDir = path.dirname(fileURLToPath(import.meta.url));
export default defineConfig({
  root: webDir,
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
