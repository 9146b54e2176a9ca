import { defineConfig } from 'drizzle-kit'

// One config, one dialect per run: `RATCHET_DIALECT=sqlite` (default) or `postgresql` (when
// its adapter lands). `npm run db:generate` runs drizzle-kit for every dialect.
const dialect = process.env.RATCHET_DIALECT ?? 'sqlite'

if (dialect !== 'sqlite')
  throw new Error(`drizzle.config.ts: unsupported RATCHET_DIALECT "${dialect}" (expected sqlite)`)

export default defineConfig({
  dialect: 'sqlite',
  schema: './packages/storage/src/sqlite/schema.ts',
  // RATCHET_MIGRATIONS_OUT: scripts/check-migrations.mjs generates into a scratch copy.
  out: process.env.RATCHET_MIGRATIONS_OUT ?? './packages/storage/migrations/sqlite',
  casing: 'snake_case',
})
