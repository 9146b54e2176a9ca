import { execFile } from 'node:child_process'
import { readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, describe, expect, it } from 'vitest'
import { configFromEnv } from '../src/config'
import { tasks } from '../src/example-tasks'
import { RUN_SOURCES } from './child-server'
import { API_KEY, startTestServer, type TestServer } from './helpers'

const ROOT = resolve(import.meta.dirname, '../../..')
const README = readFileSync(join(ROOT, 'README.md'), 'utf8')

/** The fenced code block right after `<!-- readme-test: <name> ... -->`. */
function readmeBlock(name: string): string {
  const match = new RegExp(`<!-- readme-test: ${name}[^>]*-->\\s*\`\`\`ts\\n([\\s\\S]*?)\`\`\``).exec(README)
  if (!match?.[1]) throw new Error(`README.md has no code block marked readme-test: ${name}`)
  return match[1]
}

let t: TestServer | undefined
const snippet = join(import.meta.dirname, '.readme-snippet.tmp.ts')

afterEach(async () => {
  rmSync(snippet, { force: true })
  await t?.close()
})

describe('README', () => {
  it('quick start is two commands: one starts the server, one runs the tests', () => {
    expect(README).toContain('npm install && npm start')
    expect(README).toMatch(/^npm test\b/m)
  })

  it('"Enqueue from your app" runs as written against a real server', async () => {
    t = await startTestServer(tasks)
    writeFileSync(snippet, readmeBlock('enqueue-from-app'))
    const { stdout } = await promisify(execFile)(process.execPath, [...RUN_SOURCES, snippet], {
      cwd: ROOT,
      env: { ...process.env, RATCHET_URL: t.url, RATCHET_API_KEY: API_KEY },
      timeout: 30_000,
    })
    expect(stdout).toMatch(/^completed 2 \{ messageId: 'msg-[0-9a-f]+', to: 'ada@example\.com' \}/)
  })

  it('promises the durability of the default RATCHET_SQLITE_SYNCHRONOUS, no more', () => {
    const fallback = configFromEnv({}).sqliteSynchronous
    expect(fallback).toBe('normal')
    // The table's padding follows its widest cell.
    expect(README).toMatch(new RegExp(`\\| \`RATCHET_SQLITE_SYNCHRONOUS\` +\\| \`${fallback}\``))
    for (const path of ['README.md', 'docs/execution-model.md', 'docs/deployment.md']) {
      const sentences = readFileSync(join(ROOT, path), 'utf8')
        .replace(/\s+/g, ' ')
        .split(/(?<=\.) /)
      // With `normal`, the last commits before a power loss may be lost: no doc lists a power
      // loss among the crashes that lose nothing, and each says what a power loss may lose.
      const listed = sentences.filter((x) => /\((?:SIGKILL|crash)[^)]*power[^)]*\)/i.test(x))
      expect(listed, `${path} lists a power loss among the crashes`).toEqual([])
      const warned = sentences.some((x) => /power (?:loss|failure)/i.test(x) && /\b(?:lost|lose)\b/.test(x))
      expect(warned, `${path} says what a power loss may lose`).toBe(true)
    }
  })
})
