import { describe } from 'vitest'
import { openPostgresStorage } from '@ratchet/storage'
import { runStorageConformance } from '@ratchet/storage/conformance'
import { usePostgresTestDatabase } from '@ratchet/storage/testing'

// One database for the file, emptied before each test; leases on the caller's clock, since the
// suite moves `now` instead of sleeping (postgres-leases.test.ts covers the database's clock).
const pg = await usePostgresTestDatabase()

describe.skipIf(!pg.available)('postgres', () => {
  runStorageConformance({
    name: 'postgres',
    makeStorage: async () => {
      await pg.reset()
      return openPostgresStorage({ url: pg.url, leaseClock: 'caller', poolSize: 4 })
    },
    openSecondConnection: () => openPostgresStorage({ url: pg.url, leaseClock: 'caller', poolSize: 4 }),
  })
})
