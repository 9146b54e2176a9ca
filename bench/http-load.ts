/**
 * Load generator for the HTTP benchmark, run as its own process so the client's CPU does
 * not share the server's event loop (as in a deployment). It sends exactly what
 * `@ratchet/client` sends (oRPC's RPC JSON body to /rpc/executions/enqueue) over
 * node:http with keep-alive, because Node's fetch costs more CPU per request than the
 * server does and would measure the client instead. Args: url n inflight [batch]: with batch > 1
 * each request is one `executions.enqueueMany` of `batch` executions. `url` may list several
 * servers (replicas) separated by commas: requests go to them in turn.
 * Prints one JSON line: { enqueueMs }.
 */
import { Agent, request } from 'node:http'

const [url, nArg, inflightArg, batchArg] = process.argv.slice(2)
const n = Number(nArg)
const inflight = Number(inflightArg)
const batch = Number(batchArg ?? 1)
const agent = new Agent({ keepAlive: true, maxSockets: inflight })
const targets = url!
  .split(',')
  .map((base) => new URL(batch > 1 ? '/rpc/executions/enqueueMany' : '/rpc/executions/enqueue', base))
let sent = 0

/** Enqueues executions `from` to `from + count - 1` in one request. */
function enqueue(from: number, count: number): Promise<void> {
  const target = targets[sent++ % targets.length]!
  const body = JSON.stringify(
    batch > 1
      ? {
          json: {
            items: Array.from({ length: count }, (_, k) => ({ taskId: 'noop', input: { i: from + k } })),
          },
        }
      : { json: { taskId: 'noop', input: { i: from } } },
  )
  return new Promise((resolve, reject) => {
    const req = request(
      target,
      {
        method: 'POST',
        agent,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        res.resume()
        res.on('end', () =>
          res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`)),
        )
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

let next = 0
const t0 = performance.now()
await Promise.all(
  Array.from({ length: inflight }, async () => {
    while (next < n) {
      const from = next
      const count = Math.min(batch, n - from)
      next += count
      await enqueue(from, count)
    }
  }),
)
console.log(JSON.stringify({ enqueueMs: performance.now() - t0 }))
agent.destroy()
