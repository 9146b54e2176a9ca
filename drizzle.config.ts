import { defineConfig } from 'drizzle-kit'

// One config, one dialect per run: `RATCHET_DIALECT=sqlite` (default) or `postgresql`.
// `npm run db:generate` runs drizzle-kit once for each.
const dialect = process.env.RATCHET_DIALECT ?? 'sqlite'

const dialects = {
  sqlite: { schema: './packages/storage/src/sqlite/schema.ts', out: './packages/storage/migrations/sqlite' },
  postgresql: {
    schema: './packages/storage/src/postgres/schema.ts',
    out: './packages/storage/migrations/postgres',
  },
} as const

if (dialect !== 'sqlite' && dialect !== 'postgresql')
  throw new Error(
    `drizzle.config.ts: unsupported RATCHET_DIALECT "${dialect}" (expected sqlite or postgresql)`,
  )

export default defineConfig({
  dialect,
  schema: dialects[dialect].schema,
  // RATCHET_MIGRATIONS_OUT: scripts/check-migrations.mjs generates into a scratch copy.
  out: process.env.RATCHET_MIGRATIONS_OUT ?? dialects[dialect].out,
  casing: 'snake_case',
})
