/**
 * Builds every publishable package to ESM JavaScript plus bundled `.d.ts` in its `dist/`
 * (`npm run build`). Dependencies and peer dependencies stay imports (tsdown reads each
 * package.json), so `@ratchet/core` is one shared instance at run time. Inside the repository
 * nothing needs this build: the `@ratchet/source` export condition points tests, typecheck
 * and `npm run dev` at `src/` (see docs/development.md).
 */
import { defineConfig, type UserConfig } from 'tsdown'

const pkg = (dir: string, entry: Record<string, string>, options: UserConfig = {}): UserConfig => ({
  name: dir,
  cwd: dir,
  entry,
  outDir: 'dist',
  format: 'esm',
  platform: 'node',
  target: 'node20.19',
  // `.js` and `.d.ts` (the packages are "type": "module"), not tsdown's default `.mjs`.
  fixedExtension: false,
  dts: true,
  // Types of oRPC's internal packages (e.g. @orpc/shared's AsyncIteratorClass in the contract's
  // watch output) stay imports rather than inlined copies, which would be distinct classes.
  deps: { neverBundle: [/^@orpc\//] },
  clean: true,
  // package.json is written by hand (the `@ratchet/source` condition comes first).
  exports: false,
  logLevel: 'warn',
  // rolldown's hint that declaration generation takes most of the time: known, and noise.
  inputOptions: { checks: { pluginTimings: false } },
  ...options,
})

export default defineConfig([
  pkg('packages/core', { index: 'src/index.ts', errors: 'src/errors.ts' }, { platform: 'neutral' }),
  pkg('packages/contract', { index: 'src/index.ts' }, { platform: 'neutral' }),
  pkg('packages/client', { index: 'src/index.ts' }, { platform: 'neutral' }),
  pkg('packages/orpc', {
    index: 'src/index.ts',
    app: 'src/app/index.ts',
    functions: 'src/functions/index.ts',
    node: 'src/node/index.ts',
  }),
  // `@ratchet/storage/conformance` (the adapters' test suite, on vitest) and
  // `@ratchet/storage/testing` (the PostgreSQL test-database harness) are not published: their
  // exports have only the source condition.
  pkg('packages/storage', { index: 'src/index.ts' }),
  pkg('packages/testing', { index: 'src/index.ts' }),
  pkg('apps/server', {
    index: 'src/index.ts',
    'example-tasks': 'src/example-tasks.ts',
    main: 'src/main.ts',
    cli: 'src/cli.ts',
  }),
])
