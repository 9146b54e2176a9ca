import { transform } from 'esbuild'
import { defineConfig, type Plugin } from 'vitest/config'

/**
 * Vite 8 transforms TypeScript with oxc, which lowers only legacy decorators; Node 20 cannot
 * run standard (TC39) decorators such as `@dispatch`. Files that use them go through esbuild
 * first, which lowers them (tsx, which runs the server, does the same).
 */
function standardDecorators(): Plugin {
  return {
    name: 'ratchet:standard-decorators',
    enforce: 'pre',
    async transform(code, id) {
      if (!/\.tsx?$/.test(id) || !/^\s*@\w+\(/m.test(code)) return null
      const result = await transform(code, {
        loader: 'ts',
        target: 'es2022',
        sourcemap: true,
        sourcefile: id,
      })
      return { code: result.code, map: result.map }
    },
  }
}

/**
 * Workspace packages resolve to their TypeScript sources through the `@ratchet/source` export
 * condition (their `dist/` is for publishing), so `npm test` needs no build. Tests run in Vite's
 * SSR environment, whose conditions are set apart from the client's; both get it, ahead of
 * Vite's defaults for a server.
 */
const conditions = ['@ratchet/source', 'module', 'node', 'development|production']

export default defineConfig({
  plugins: [standardDecorators()],
  resolve: { conditions },
  // Vitest hands the SSR conditions to Node itself (--conditions) for the dependencies it does
  // not transform: without `module`, which Node does not use either. With it, a package that
  // ships an extensionless ESM build under `module` (@opentelemetry/api, which prom-client
  // requires) cannot load.
  ssr: { resolve: { conditions: conditions.filter((c) => c !== 'module') } },
  test: {
    include: ['{apps,packages,examples}/*/{src,test}/**/*.test.ts'],
    // Crash tests start real server processes; end-to-end tests run real HTTP servers.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
})
