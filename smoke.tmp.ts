import pg from 'pg'
import { openPostgresStorage } from '@ratchet/storage'
import { newExecutionId } from '@ratchet/core'
const admin = new pg.Client({ connectionString: 'postgres://postgres@127.0.0.1:5432/postgres' })
await admin.connect()
const name = `ratchet_t_smoke${Date.now()}`
await admin.query(`CREATE DATABASE ${name}`)
const url = `postgres://postgres@127.0.0.1:5432/${name}`
const s = await openPostgresStorage({ url, leaseClock: 'caller' })
const T0 = Date.UTC(2030, 0, 1)
const mk = (o: object = {}) => ({ id: newExecutionId(T0), taskId: 'alpha', input: '{"a":1,"b":2}', maxAttempts: 3, maxRecoveries: 5, timeoutMs: 1000, backoff: { initialMs: 1, factor: 2, maxMs: 10 }, priority: 0, idempotencyKey: null, runAt: T0, ...o })
try {
await s.enqueue([mk(), mk({ taskId: 'beta' }), mk({ priority: 5 }), mk({ runAt: T0 + 1000 }), mk({ taskId: 'beta', priority: 5 }), mk()], T0)
const r = await s.claim({ owner: 'w', now: T0, leaseMs: 1000, limit: 3, taskIds: ['alpha', 'beta'] })
console.log(r.claimed.map((x) => [x.taskId, x.priority, x.runs, x.status, x.leaseExpiresAt]))
const r2 = await s.claim({ owner: 'w', now: T0, leaseMs: 1000, limit: 10, taskIds: ['alpha', 'beta'] })
console.log(r2.claimed.map((x) => [x.taskId, x.priority, x.runs, x.status, x.leaseExpiresAt]))
console.log((await s.database.query("explain analyze " + "select 1")).rows.length)
} finally {
await s.close()
await admin.query(`DROP DATABASE ${name}`)
await admin.end()
}
