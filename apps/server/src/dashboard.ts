import { existsSync, readFileSync, statSync } from 'node:fs'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { extname, join, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'

/**
 * Serves the built dashboard (apps/dashboard, built by Vite into `dist/dashboard` beside the
 * server's own build) at `/`. Files are read once and kept in memory with their gzip form (the
 * build is a few hundred KiB). Hashed files under `assets/` are cached by browsers for a year;
 * `index.html` is revalidated every time, so a new build is picked up at once. A path with no
 * file extension that is not a file is a client route and gets `index.html` (the SPA
 * fallback); a missing file with an extension is a 404. The caller routes `/rpc`, `/api`,
 * `/auth`, `/healthz`, `/readyz` and `/metrics` before it, so it never shadows them.
 */

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
}
const COMPRESSIBLE = new Set(['.html', '.js', '.mjs', '.css', '.json', '.map', '.svg', '.txt'])

/** Content-Security-Policy of the page: everything from this origin; styles inline (the graph library positions nodes with them). */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

interface CachedFile {
  body: Buffer
  gzip: Buffer | undefined
  type: string
}

/**
 * Where the dashboard build is by default: `dashboard/` beside the compiled server
 * (apps/server/dist/dashboard, which is what the package ships), or, running from sources
 * (`npm run dev`, tests), the same folder under `../dist`.
 */
export function defaultDashboardDir(): string | undefined {
  const candidates = [
    new URL('./dashboard/', import.meta.url),
    new URL('../dist/dashboard/', import.meta.url),
  ]
  for (const url of candidates) {
    const dir = fileURLToPath(url)
    if (existsSync(join(dir, 'index.html'))) return dir
  }
  return undefined
}

export const NOT_BUILT_MESSAGE =
  'The Ratchet dashboard is not built. Run `npm run build` at the repository root (it builds the ' +
  'dashboard into apps/server/dist/dashboard), then restart the server; `npm start` does both. The ' +
  'API (/api, /rpc) works without it.'

export class DashboardFiles {
  readonly #root: string | undefined
  readonly #cache = new Map<string, CachedFile>()

  /**
   * `dir`: the folder holding index.html. Undefined, or a folder without index.html, means "not
   * built": every page then says how to build it (checked once: restart after building).
   */
  constructor(dir: string | undefined) {
    this.#root = dir !== undefined && existsSync(join(dir, 'index.html')) ? resolve(dir) : undefined
  }

  get built(): boolean {
    return this.#root !== undefined
  }

  /** Answers a GET or HEAD for `path` (already known not to be an API route). */
  serve(req: IncomingMessage, res: ServerResponse, path: string): void {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' })
      res.end('method not allowed\n')
      return
    }
    if (!this.#root) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' })
      res.end(`${NOT_BUILT_MESSAGE}\n`)
      return
    }
    let relative: string
    try {
      relative = decodeURIComponent(path).replace(/^\/+/, '')
    } catch {
      relative = ''
    }
    const asset = relative === '' ? undefined : this.#file(relative)
    if (asset) return this.#send(req, res, asset, relative.startsWith('assets/'))
    // A file name that is not there is a 404; anything else is a client-side route.
    if (extname(relative) !== '') {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
      res.end('not found\n')
      return
    }
    const index = this.#file('index.html')
    if (!index) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' })
      res.end(`${NOT_BUILT_MESSAGE}\n`)
      return
    }
    this.#send(req, res, index, false)
  }

  #file(relative: string): CachedFile | undefined {
    const cached = this.#cache.get(relative)
    if (cached) return cached
    const full = resolve(this.#root!, relative)
    let file: CachedFile | undefined
    // Never outside the build folder (`..`, encoded or not, ends here).
    if (full.startsWith(this.#root! + sep) && existsSync(full) && statSync(full).isFile()) {
      const body = readFileSync(full)
      const ext = extname(full)
      file = {
        body,
        gzip: COMPRESSIBLE.has(ext) && body.length > 1024 ? gzipSync(body) : undefined,
        type: CONTENT_TYPES[ext] ?? 'application/octet-stream',
      }
    }
    // Only hits are kept: the cache is bounded by the files of the build.
    if (file) this.#cache.set(relative, file)
    return file
  }

  #send(req: IncomingMessage, res: ServerResponse, file: CachedFile, immutable: boolean): void {
    const gzip = file.gzip !== undefined && /\bgzip\b/.test(req.headers['accept-encoding'] ?? '')
    const body = gzip ? file.gzip! : file.body
    res.writeHead(200, {
      'content-type': file.type,
      'content-length': body.length,
      'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache',
      'x-content-type-options': 'nosniff',
      vary: 'Accept-Encoding',
      ...(gzip ? { 'content-encoding': 'gzip' } : {}),
      ...(file.type.startsWith('text/html')
        ? { 'content-security-policy': CSP, 'referrer-policy': 'same-origin', 'x-frame-options': 'DENY' }
        : {}),
    })
    res.end(req.method === 'HEAD' ? undefined : body)
  }
}
