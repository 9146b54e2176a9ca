// Type-aware lint. A lost promise in an executor is a lost completion, so
// no-floating-promises and no-misused-promises are errors everywhere.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '**/dist/**',
      '**/migrations/**',
      'coverage/**',
      '.data/**',
      // A user's projects, type-checked by the consumer test under their own tsconfigs.
      'test/consumer/fixtures/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ['eslint.config.js', 'scripts/*.mjs'] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { fixStyle: 'separate-type-imports' }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/only-throw-error': 'error',
      'no-restricted-syntax': [
        'error',
        { selector: 'ExportDefaultDeclaration', message: 'Named exports only.' },
      ],
    },
  },
  {
    // @ratchet/orpc runs in web apps on any runtime (edge, serverless): no Node built-ins,
    // except in src/node (a local server for fetch handlers).
    files: ['packages/orpc/src/*.ts', 'packages/orpc/src/app/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', 'fs', 'path', 'http', 'crypto', 'os', 'child_process'],
              message: 'Runtime-agnostic package: no Node built-ins (use Web Crypto and fetch).',
            },
          ],
        },
      ],
    },
  },
  {
    // The engine and the client run anywhere: no Node built-ins, no drivers, no HTTP, no pino.
    files: ['packages/core/src/**/*.ts', 'packages/client/src/**/*.ts', 'packages/contract/src/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', 'fs', 'path', 'http', 'crypto', 'os', 'child_process'],
              message: 'Runtime-agnostic package: no Node built-ins.',
            },
            {
              group: [
                'better-sqlite3',
                'pg',
                'drizzle-orm',
                'drizzle-orm/*',
                'pino',
                '@orpc/server',
                '@orpc/server/*',
              ],
              message: 'No drivers, HTTP servers or loggers here.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['**/*.test.ts', '**/test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-non-null-assertion': 'off', '@typescript-eslint/unbound-method': 'off' },
  },
  {
    // Type tests call things that must not compile (under @ts-expect-error) on purpose.
    files: ['**/*.test-d.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
    },
  },
  // Tool configs are loaded through their default export.
  {
    files: ['*.config.ts', '*.config.js', 'apps/*/vite.config.ts'],
    rules: { 'no-restricted-syntax': 'off' },
  },
  // Serverless route files: platforms call their default export.
  { files: ['examples/*/src/routes/**/*.ts'], rules: { 'no-restricted-syntax': 'off' } },
  { files: ['eslint.config.js', 'scripts/**/*.mjs'], ...tseslint.configs.disableTypeChecked },
  { files: ['scripts/**/*.mjs'], languageOptions: { globals: { process: 'readonly', console: 'readonly' } } },
)
