#!/usr/bin/env node
// Fails when the drizzle schema and the committed migrations disagree: runs drizzle-kit
// generate into a scratch copy of the migrations and checks that it adds nothing.
// drizzle-kit needs a relative output path and exits 0 on some errors, so the scratch copy
// lives in the repository (git-ignored) and its "No schema changes" message is required.
import { execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, readdirSync, rmSync } from 'node:fs'

const DRIZZLE_KIT = 'node_modules/drizzle-kit/bin.cjs'
const dialects = [
  { name: 'sqlite', folder: 'packages/storage/migrations/sqlite' },
  { name: 'postgresql', folder: 'packages/storage/migrations/postgres' },
]
let failed = false
for (const { name, folder } of dialects) {
  const scratch = `.migrations-check/${name}`
  rmSync(scratch, { recursive: true, force: true })
  mkdirSync(scratch, { recursive: true })
  try {
    cpSync(folder, scratch, { recursive: true })
    const before = readdirSync(scratch, { recursive: true }).sort()
    let output = ''
    try {
      // The schema imports @ratchet/core: the `@ratchet/source` condition resolves it to its
      // sources (drizzle-kit compiles them), so no build is needed.
      output = execFileSync(process.execPath, ['--conditions=@ratchet/source', DRIZZLE_KIT, 'generate'], {
        env: { ...process.env, RATCHET_DIALECT: name, RATCHET_MIGRATIONS_OUT: `./${scratch}` },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      })
    } catch (error) {
      output = `${error.stdout ?? ''}${error.stderr ?? ''}`
    }
    const added = readdirSync(scratch, { recursive: true }).filter((f) => !before.includes(f))
    if (added.length > 0) {
      failed = true
      console.error(
        `${name}: the schema has changes with no migration (would add ${added.join(', ')}). Run npm run db:generate.`,
      )
    } else if (!/No schema changes/.test(output)) {
      failed = true
      console.error(`${name}: drizzle-kit did not confirm the migrations match:\n${output}`)
    } else console.log(`${name}: migrations match the schema`)
  } finally {
    rmSync('.migrations-check', { recursive: true, force: true })
  }
}
process.exit(failed ? 1 : 0)
