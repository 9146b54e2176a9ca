import { fileURLToPath } from 'node:url'

/**
 * The SQLite migrations shipped with this package (its `migrations/sqlite` folder, listed in
 * `files`). Resolved from this module's own URL, which sits one level below the package root
 * both as a source (`src/migrations-folder.ts`) and once built (tsdown bundles it into
 * `dist/index.js`): keep this file directly in `src/`. A bundler that moves the code elsewhere
 * must ship the folder and pass `migrationsFolder`.
 */
export const SQLITE_MIGRATIONS_FOLDER = fileURLToPath(new URL('../migrations/sqlite', import.meta.url))

/** The PostgreSQL migrations shipped with this package (its `migrations/postgres` folder), as above. */
export const POSTGRES_MIGRATIONS_FOLDER = fileURLToPath(new URL('../migrations/postgres', import.meta.url))
