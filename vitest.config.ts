import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['{apps,packages,examples}/*/{src,test}/**/*.test.ts'],
    // Crash tests start real server processes; end-to-end tests run real HTTP servers.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
})
