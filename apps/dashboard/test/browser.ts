/**
 * The pieces of the dashboard's browser test that are not the test itself: finding Chromium,
 * building the SPA, starting a real server with API keys, and saving screenshots.
 */
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { TaskMap } from '@ratchet/core'
import { createServer, type RatchetServer } from '@ratchet/server'
import type { Page } from 'playwright-core'

/** Debian's package (`apt-get install -y chromium`); RATCHET_CHROMIUM overrides. */
export const CHROMIUM = process.env.RATCHET_CHROMIUM ?? '/usr/bin/chromium'
export const HAS_CHROMIUM = existsSync(CHROMIUM)
export const SKIP_REASON = `Chromium not found at ${CHROMIUM}: install it (apt-get install -y chromium, as .ci/run does) or set RATCHET_CHROMIUM`

/** Flags that work on these machines (see TOOLCHAIN.md): no sandbox as root, no background traffic. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]

const here = fileURLToPath(new URL('.', import.meta.url))
export const ARTIFACTS = join(here, '..', '..', '..', 'test-artifacts', 'dashboard')

/** Builds the SPA with its own Vite config into a fresh folder (about 2 s), so the test never serves a stale build. */
export async function buildDashboard(): Promise<string> {
  const { build } = await import('vite')
  const outDir = mkdtempSync(join(tmpdir(), 'ratchet-dashboard-build-'))
  await build({
    configFile: join(here, '..', 'vite.config.ts'),
    logLevel: 'warn',
    build: { outDir, emptyOutDir: true },
  })
  return outDir
}

export async function startServer(
  tasks: TaskMap,
  dashboardDir: string,
  apiKey: string,
): Promise<{ server: RatchetServer; url: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'ratchet-dashboard-e2e-'))
  const server = await createServer({
    tasks,
    databaseUrl: `file:${join(dir, 'ratchet.db')}`,
    port: 0,
    host: '127.0.0.1',
    apiKeys: [{ name: 'ops', secret: apiKey }],
    dashboardDir,
    drainMs: 500,
    shortSleepMs: 200,
  })
  const { url } = await server.start()
  return { server, url, dir }
}

/** Saves `test-artifacts/dashboard/<name>.png` (full page) and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true })
  const path = join(ARTIFACTS, `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  return path
}

/** Resolves when `predicate` holds, checking every 50 ms; rejects after `timeoutMs` with the last value. */
export async function until<T>(
  read: () => Promise<T>,
  predicate: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await read()
    if (predicate(value)) return value
    if (Date.now() > deadline)
      throw new Error(`condition not met within ${timeoutMs} ms; last value: ${JSON.stringify(value)}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}
