import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { onTestFinished } from 'vitest'
import { openSqliteStorage, type SqliteStorage } from '@ratchet/storage'
import { runStorageConformance } from '@ratchet/storage/conformance'

runStorageConformance({
  name: 'sqlite',
  makeStorage: () => {
    const dir = mkdtempSync(join(tmpdir(), 'ratchet-'))
    // A failed test keeps its database file as evidence.
    onTestFinished(({ task }) =>
      task.result?.state === 'fail'
        ? console.warn(`kept ${dir}`)
        : rmSync(dir, { recursive: true, force: true }),
    )
    return Promise.resolve(openSqliteStorage({ filename: join(dir, 'ratchet.db') }))
  },
  openSecondConnection: (storage) =>
    Promise.resolve(openSqliteStorage({ filename: (storage as SqliteStorage).db.$client.name })),
})
