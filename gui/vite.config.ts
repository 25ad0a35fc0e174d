import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/**
 * The admin GUI: built by `npm run build` into gui/dist, which the service
 * serves at /admin (src/admin-ui). `@protocol` is the server's own typed
 * Socket.IO protocol (src/events/socket-protocol.ts: types and constants only).
 */
export default defineConfig({
  root: here('.'),
  base: '/admin/',
  plugins: [react()],
  resolve: {
    alias: {
      '@protocol': here('../src/events/socket-protocol.ts'),
    },
  },
  server: {
    // Dev server (`npx vite --config gui/vite.config.ts`): the shared protocol lives outside gui/.
    fs: { allow: [here('.'), here('../src/events')] },
    proxy: {
      '/api': 'http://127.0.0.1:3000',
      '/ws': { target: 'ws://127.0.0.1:3000', ws: true },
    },
  },
  build: {
    outDir: here('dist'),
    emptyOutDir: true,
    sourcemap: false,
    // No inline scripts or styles: the page's CSP allows 'self' only.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 1024,
  },
});
