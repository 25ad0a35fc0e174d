import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/**
 * The browser demo of @agentic-registry/client: built by `npm run build`
 * (after the library: it imports the package's built ESM, as an application
 * would) into examples/browser-demo/dist, served by the service at /demo
 * (src/demo). No inline scripts or styles: the page's CSP allows 'self' only.
 */
export default defineConfig({
  root: here('.'),
  base: '/demo/',
  build: {
    outDir: here('dist'),
    emptyOutDir: true,
    sourcemap: false,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
  server: { proxy: { '/api': 'http://127.0.0.1:3000' } },
});
