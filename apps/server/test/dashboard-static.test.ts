/**
 * The built dashboard served at `/` over real HTTP: content types, caching of hashed assets,
 * the SPA fallback for client routes, and the server's own routes never shadowed. Without a
 * build, `/` says how to build it.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { afterEach, describe, expect, it } from 'vitest'
import { tasks } from './fixtures/watch-tasks'
import { startTestServer, type TestServer } from './helpers'

let t: TestServer | undefined
let dir: string | undefined
afterEach(async () => {
  await t?.close()
  t = undefined
  if (dir) rmSync(dir, { recursive: true, force: true })
  dir = undefined
})

const INDEX =
  '<!doctype html><html><body><div id="root"></div><script src="/assets/app-Ab12.js"></script></body></html>'
const SCRIPT = `console.log(${JSON.stringify('x'.repeat(4000))})`

function fakeBuild(): string {
  const root = mkdtempSync(join(tmpdir(), 'ratchet-dashboard-'))
  mkdirSync(join(root, 'assets'))
  writeFileSync(join(root, 'index.html'), INDEX)
  writeFileSync(join(root, 'assets', 'app-Ab12.js'), SCRIPT)
  writeFileSync(join(root, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>')
  return root
}

describe('dashboard static files', () => {
  it('serves index.html, hashed assets cached for a year, and index.html for client routes', async () => {
    dir = fakeBuild()
    t = await startTestServer(tasks, { dashboardDir: dir })
    const root = await fetch(`${t.url}/`)
    expect(root.status).toBe(200)
    expect(root.headers.get('content-type')).toBe('text/html; charset=utf-8')
    expect(root.headers.get('cache-control')).toBe('no-cache')
    expect(root.headers.get('content-security-policy')).toContain("default-src 'self'")
    expect(await root.text()).toBe(INDEX)

    for (const route of ['/executions', '/executions/abc123', '/tasks/gate', '/login']) {
      const page = await fetch(`${t.url}${route}`)
      expect(page.status, route).toBe(200)
      expect(await page.text(), route).toBe(INDEX)
    }

    const asset = await fetch(`${t.url}/assets/app-Ab12.js`)
    expect(asset.status).toBe(200)
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8')
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
    expect(await asset.text()).toBe(SCRIPT)
    const svg = await fetch(`${t.url}/favicon.svg`)
    expect(svg.headers.get('content-type')).toBe('image/svg+xml')
    expect(svg.headers.get('cache-control')).toBe('no-cache')

    // gzip when asked for (raw bytes, not decoded by fetch).
    const gz = await new Promise<{ encoding: string | undefined; body: Buffer }>((resolve, reject) => {
      import('node:http')
        .then(({ get }) =>
          get(`${t!.url}/assets/app-Ab12.js`, { headers: { 'accept-encoding': 'gzip' } }, (res) => {
            const chunks: Buffer[] = []
            res.on('data', (c: Buffer) => chunks.push(c))
            res.on('end', () =>
              resolve({ encoding: res.headers['content-encoding'], body: Buffer.concat(chunks) }),
            )
          }).on('error', reject),
        )
        .catch(reject)
    })
    expect(gz.encoding).toBe('gzip')
    expect(gunzipSync(gz.body).toString()).toBe(SCRIPT)
  })

  it('a missing file is a 404, never a path outside the build, never an API route', async () => {
    dir = fakeBuild()
    writeFileSync(join(dir, '..', 'ratchet-secret.txt'), 'secret')
    t = await startTestServer(tasks, { dashboardDir: dir })
    expect((await fetch(`${t.url}/assets/missing-0000.js`)).status).toBe(404)
    expect((await fetch(`${t.url}/%2e%2e/ratchet-secret.txt`)).status).toBe(404)
    expect((await fetch(`${t.url}/..%2fratchet-secret.txt`)).status).toBe(404)
    rmSync(join(dir, '..', 'ratchet-secret.txt'))

    for (const path of ['/api/nope', '/rpc/nope', '/auth/nope', '/metrics/x', '/apix']) {
      const res = await fetch(`${t.url}${path}`)
      if (path === '/apix') {
        // Not an API route: a client route like any other.
        expect(res.status).toBe(200)
        continue
      }
      expect(res.headers.get('content-type'), path).toBe('application/json')
    }
    expect(await (await fetch(`${t.url}/healthz`)).json()).toEqual({ status: 'ok' })
    expect((await fetch(`${t.url}/`, { method: 'POST' })).status).toBe(405)
  })

  it('without a build, / says how to build the dashboard', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ratchet-empty-'))
    t = await startTestServer(tasks, { dashboardDir: dir })
    const res = await fetch(`${t.url}/`)
    expect(res.status).toBe(404)
    expect(await res.text()).toMatch(/dashboard is not built\. Run `npm run build`/)
    expect((await fetch(`${t.url}/executions`)).status).toBe(404)
  })
})
