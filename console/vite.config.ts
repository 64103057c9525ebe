import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// The console build: `vite build --config console/vite.config.ts` (part of `npm run build`). Output in
// dist/console/web, served by src/console at `/` (index.html) and `/console/assets/*` (hashed, immutable).
// No CDN and no runtime network access beyond the platform's own origin (the server's CSP enforces it).
const root = fileURLToPath(new URL('.', import.meta.url));

export default defineConfig({
  root,
  base: '/console/',
  publicDir: false,
  logLevel: 'warn',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: fileURLToPath(new URL('../dist/console/web', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 600,
    // No inline <script> or modulepreload polyfill: the CSP allows scripts from this origin only.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
});
