import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

/**
 * The dashboard is built into the server's own dist folder (apps/server/dist/dashboard), which
 * the @ratchet/server package ships and serves at `/`. `npm run build` at the root runs this
 * after tsdown (which empties apps/server/dist). `npm run dev -w @ratchet/dashboard` serves it
 * with hot reload on :5173 and forwards the API to a server on :8787 (`npm run dev`).
 */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  resolve: { conditions: ['@ratchet/source'] },
  oxc: { jsx: { runtime: 'automatic' } },
  build: {
    outDir: fileURLToPath(new URL('../server/dist/dashboard', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 700,
    rolldownOptions: {
      // React Query and React Flow mark their modules "use client" (for React Server Components);
      // meaningless in an SPA bundle.
      onwarn(warning, warn) {
        if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning)
      },
    },
  },
  server: {
    proxy: Object.fromEntries(
      ['/rpc', '/api', '/auth'].map((path) => [path, { target: 'http://127.0.0.1:8787' }]),
    ),
  },
})
