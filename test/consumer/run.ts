/**
 * The external-consumer test (`npm run test:consumer`): uses Ratchet as another repository
 * would, from the packed tarballs, with no workspace links.
 *
 * 1. builds the packages and packs each publishable one (`npm pack`);
 * 2. creates two projects in a fresh folder under os.tmpdir(), outside this repository:
 *    `server/` (depends on @ratchet/server, core, orpc, zod; its own tests with
 *    @ratchet/testing and vitest) and `web/` (depends on @ratchet/client only, and type-imports
 *    the server's tasks module), from test/consumer/fixtures; installs them with plain npm,
 *    every @ratchet/* package from its tarball (`file:` specs plus `overrides`; the @ratchet
 *    scope's registry is a closed port, so nothing of it can come from a registry);
 * 3. checks: `tsc` of the web app under NodeNext and under Bundler (strict, DOM lib,
 *    skipLibCheck false) passes, and a wrong input type fails with TS2322; `tsc` of the server
 *    project (its tasks, its tests, @ratchet/server used as a library); `npx ratchet start
 *    --tasks ./src/tasks.ts` serves the project's TypeScript tasks from the compiled server;
 *    plain `node app.mjs` enqueues and waits against it; the packed `ratchet` bin is a client
 *    of it too (`enqueue --wait --json`, `ls --json`, `get` of an unknown id exits 1); the
 *    tasks module shares the server's @ratchet/core (a TerminalError is not retried, a RetryableError's retryAfterMs is kept);
 *    a JavaScript tasks module loads with no TypeScript loader; an esbuild bundle of the
 *    client for the browser holds no task code and no `node:` import, and works; a web app's
 *    functions route (@ratchet/orpc/functions) bundles for an edge runtime with no `node:`
 *    import, and its functions run from the tarballs in the project's own test; the
 *    project's own vitest test passes, and fails when its assertion is made wrong.
 *
 * Prints PASS/FAIL lines and exits 1 on any failure. Removes its folder at the end (set
 * RATCHET_CONSUMER_KEEP=1 to keep it for inspection).
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { gzipSync } from 'node:zlib'
import {
  API_KEY,
  check,
  must,
  run,
  startRatchet,
  stopRatchet,
  tally,
  typecheck,
  type Server,
} from './harness'

const ROOT = resolve(import.meta.dirname, '../..')
const FIXTURES = join(import.meta.dirname, 'fixtures')
/** The packages a user installs, in the order `npm pack` takes them. */
const PACKAGES = [
  'packages/core',
  'packages/storage',
  'packages/contract',
  'packages/client',
  'packages/orpc',
  'packages/testing',
  'apps/server',
]
/** Versions the projects install from the registry (the same as the repository's lockfile). */
const VERSIONS = {
  zod: '4.6.7',
  '@orpc/client': '1.16.1',
  vitest: '4.1.12',
  typescript: '5.9.3',
  esbuild: '0.28.2',
  '@types/node': '20.19.43',
  // oRPC's own .d.ts import @opentelemetry/api (an optional peer of @orpc/shared): a web app
  // with skipLibCheck false needs it where those .d.ts are resolved from: its own project and
  // the server project whose tasks module it type-imports.
  '@opentelemetry/api': '1.9.0',
}

interface Packed {
  name: string
  filename: string
  size: number
  unpackedSize: number
  files: { path: string }[]
}

async function main(): Promise<void> {
  const started = Date.now()
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'ratchet-consumer-')))
  if (!relative(ROOT, dir).startsWith('..')) throw new Error(`${dir} is inside the repository`)
  console.log(`consumer test in ${dir}`)
  let server: Server | undefined
  try {
    // ---- build and pack ----
    must(await run('npm', ['run', 'build', '--silent'], { cwd: ROOT }), 'npm run build')
    const tarballs = join(dir, 'tarballs')
    mkdirSync(tarballs)
    const pack = must(
      await run(
        'npm',
        ['pack', '--json', '--pack-destination', tarballs, ...PACKAGES.flatMap((p) => ['--workspace', p])],
        { cwd: ROOT },
      ),
      'npm pack',
    )
    const packed = JSON.parse(pack.stdout) as Packed[]
    const tarball: Record<string, string> = {}
    for (const p of packed) {
      tarball[p.name] = `file:../tarballs/${p.filename}`
      const paths = p.files.map((f) => f.path)
      const entry = p.name === '@ratchet/server' ? 'dist/cli.js' : 'dist/index.js'
      const ok =
        paths.includes(entry) &&
        paths.includes('dist/index.d.ts') &&
        !paths.some((path) => path.startsWith('src/') || path.includes('.test.')) &&
        (p.name !== '@ratchet/storage' || paths.includes('migrations/sqlite/meta/_journal.json')) &&
        (p.name !== '@ratchet/server' || paths.includes('dist/dashboard/index.html'))
      check(
        ok,
        `npm pack ${p.name}`,
        `${p.filename}, ${(p.size / 1024).toFixed(1)} kB packed, ${(p.unpackedSize / 1024).toFixed(1)} kB unpacked, ${p.files.length} files`,
      )
    }
    const overrides = Object.fromEntries(Object.entries(tarball))

    // ---- the two projects ----
    const serverDir = join(dir, 'server')
    const web = join(dir, 'web')
    cpSync(join(FIXTURES, 'server'), serverDir, { recursive: true })
    cpSync(join(FIXTURES, 'web'), web, { recursive: true })
    const pick = (...names: string[]) =>
      Object.fromEntries(names.map((n) => [n, tarball[n] ?? VERSIONS[n as keyof typeof VERSIONS]]))
    const manifest = (name: string, dependencies: object, devDependencies: object) =>
      JSON.stringify(
        { name, private: true, type: 'module', dependencies, devDependencies, overrides },
        null,
        2,
      )
    writeFileSync(
      join(serverDir, 'package.json'),
      manifest(
        'consumer-server',
        pick('@ratchet/server', '@ratchet/core', '@ratchet/orpc', '@orpc/client', 'zod'),
        pick('@ratchet/testing', 'vitest', 'typescript', '@types/node', '@opentelemetry/api'),
      ),
    )
    writeFileSync(
      join(web, 'package.json'),
      manifest(
        'consumer-web',
        pick('@ratchet/client'),
        pick('typescript', 'esbuild', '@types/node', '@opentelemetry/api'),
      ),
    )
    // Any request for an @ratchet package goes to a closed port: nothing can come from a registry.
    for (const project of [serverDir, web])
      writeFileSync(
        join(project, '.npmrc'),
        '@ratchet:registry=http://127.0.0.1:9/\nfund=false\naudit=false\n',
      )

    // Both at once; the server project compiles better-sqlite3 (about a minute).
    const installs = await Promise.all(
      [serverDir, web].map((cwd) =>
        run('npm', ['install', '--no-audit', '--no-fund'], { cwd, timeoutMs: 600_000 }),
      ),
    )
    installs.forEach((result, i) => must(result, `npm install in ${i === 0 ? 'server' : 'web'}`))
    for (const [project, label] of [
      [serverDir, 'server'],
      [web, 'web'],
    ] as const) {
      const lock = JSON.parse(readFileSync(join(project, 'package-lock.json'), 'utf8')) as {
        packages: Record<string, { resolved?: string }>
      }
      // The @ratchet packages themselves, not the dependencies installed below them.
      const ratchet = Object.entries(lock.packages).filter(([path]) =>
        /(^|\/)node_modules\/@ratchet\/[^/]+$/.test(path),
      )
      const fromRegistry = ratchet.filter(([, entry]) => !entry.resolved?.startsWith('file:'))
      const cores = ratchet.filter(([path]) => path.endsWith('node_modules/@ratchet/core'))
      check(
        ratchet.length > 0 && fromRegistry.length === 0 && cores.length <= 1,
        `${label}: npm install took every @ratchet package from its tarball, one @ratchet/core`,
        `${ratchet.map(([path]) => path.replace(/^node_modules\//, '')).join(', ')} (${installs[label === 'server' ? 0 : 1]!.ms} ms)` +
          (fromRegistry.length ? `; NOT from a tarball: ${fromRegistry.map(([p]) => p).join(', ')}` : ''),
      )
    }

    // ---- the web app type-checks, under NodeNext and under Bundler ----
    await typecheck(web, 'tsconfig.nodenext.json', 'NodeNext')
    await typecheck(web, 'tsconfig.bundler.json', 'Bundler')

    // ---- the server project type-checks: tasks, its tests, the server and storage as libraries ----
    const serverTsc = await run('npx', ['--no-install', 'tsc', '-p', 'tsconfig.json'], { cwd: serverDir })
    check(
      serverTsc.code === 0,
      'server project: tsc --noEmit of its tasks, its tests and the server as a library (strict, NodeNext, DOM lib, skipLibCheck false)',
      serverTsc.code === 0 ? `${serverTsc.ms} ms` : serverTsc.stdout + serverTsc.stderr,
    )

    // ---- the server on the project's own TypeScript tasks module ----
    const bin = realpathSync(join(serverDir, 'node_modules/.bin/ratchet'))
    check(
      bin.endsWith(join('node_modules', '@ratchet', 'server', 'dist', 'cli.js')),
      'the ratchet bin is the compiled dist/cli.js of the packed @ratchet/server',
      relative(serverDir, bin),
    )
    const version = await run('npx', ['--no-install', 'ratchet', '--version'], { cwd: serverDir })
    check(version.stdout.trim() === '0.1.0', 'npx ratchet --version', version.stdout.trim() || version.stderr)
    server = await startRatchet(serverDir, ['--tasks', './src/tasks.ts'], join(dir, 'data-ts'))
    const listening = server.logs.find((entry) => entry.msg === 'ratchet server listening')
    check(
      JSON.stringify(listening?.tasks) ===
        JSON.stringify(['greet', 'charge-card', 'rate-limited', 'send-email']),
      "npx ratchet start --tasks ./src/tasks.ts serves the project's tasks (zod, @orpc/client from the project)",
      `${server.url}, tasks ${JSON.stringify(listening?.tasks)}`,
    )

    // ---- the dashboard, shipped in the package (dist/dashboard) and served at / ----
    const page = await fetch(`${server.url}/`)
    const html = await page.text()
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1]
    const asset = script ? await fetch(`${server.url}${script}`) : undefined
    check(
      page.status === 200 &&
        html.includes('<div id="root">') &&
        asset?.status === 200 &&
        asset.headers.get('content-type') === 'text/javascript; charset=utf-8' &&
        (await fetch(`${server.url}/executions/some-id`)).status === 200,
      'GET / serves the dashboard shipped in @ratchet/server (its script, client routes)',
      `${page.status} ${page.headers.get('content-type')}, ${script ?? 'no script'} ${asset?.status ?? ''}`,
    )

    // ---- plain node against it ----
    const app = await run('node', ['app.mjs'], {
      cwd: web,
      env: { RATCHET_URL: server.url, RATCHET_API_KEY: API_KEY },
      timeoutMs: 60_000,
    })
    let report: {
      greet?: { greeting?: string }
      declined?: { status?: string; failures?: number; attempt?: number; code?: string }
      rateLimited?: { status?: string; failures?: number; retryInMs?: number }
    } = {}
    try {
      report = JSON.parse(app.stdout.trim().split('\n').pop() ?? '{}') as typeof report
    } catch {
      // reported below
    }
    check(
      app.code === 0 && report.greet?.greeting === 'Hello, Ada!',
      'node app.mjs (no tsx): greet enqueued and waited for, completed',
      app.code === 0 ? JSON.stringify(report.greet) : app.stdout + app.stderr,
    )
    check(
      report.declined?.status === 'failed' &&
        report.declined.failures === 1 &&
        report.declined.code === 'CARD_DECLINED',
      "the tasks module's TerminalError is not retried (maxAttempts 3)",
      JSON.stringify(report.declined),
    )
    // instanceof RetryableError holds only if the module and the server share @ratchet/core.
    check(
      report.rateLimited?.status === 'queued' &&
        report.rateLimited.failures === 1 &&
        (report.rateLimited.retryInMs ?? 0) > 50_000,
      "one @ratchet/core: the tasks module's RetryableError sets the next attempt 60 s out (back-off: 10 ms)",
      JSON.stringify(report.rateLimited),
    )

    // ---- the ratchet bin as a client of the same server ----
    const cliEnv = { RATCHET_URL: server.url, RATCHET_API_KEY: API_KEY }
    const waited = await run(
      'npx',
      ['--no-install', 'ratchet', 'enqueue', 'greet', '{"name":"CLI"}', '--wait', '--json'],
      { cwd: serverDir, env: cliEnv, timeoutMs: 60_000 },
    )
    let waitedExecution: { status?: string; output?: { greeting?: string } } = {}
    try {
      waitedExecution = JSON.parse(waited.stdout) as typeof waitedExecution
    } catch {
      // reported below
    }
    check(
      waited.code === 0 && waitedExecution.output?.greeting === 'Hello, CLI!',
      'npx ratchet enqueue greet \'{"name":"CLI"}\' --wait --json (the packed bin as a client)',
      waited.code === 0
        ? `${waitedExecution.status ?? '?'} in ${waited.ms} ms`
        : waited.stdout + waited.stderr,
    )
    const listed = await run('npx', ['--no-install', 'ratchet', 'ls', '--json', '--task', 'greet'], {
      cwd: serverDir,
      env: cliEnv,
      timeoutMs: 60_000,
    })
    let listedTasks: string[] = []
    try {
      listedTasks = (JSON.parse(listed.stdout) as { items: { taskId: string }[] }).items.map(
        (item) => item.taskId,
      )
    } catch {
      // reported below
    }
    check(
      listed.code === 0 && listedTasks.length >= 2 && listedTasks.every((taskId) => taskId === 'greet'),
      'npx ratchet ls --json --task greet lists the executions of app.mjs and the CLI',
      listed.code === 0 ? `${listedTasks.length} executions` : listed.stdout + listed.stderr,
    )
    const missing = await run('npx', ['--no-install', 'ratchet', 'get', 'no-such-id'], {
      cwd: serverDir,
      env: cliEnv,
      timeoutMs: 60_000,
    })
    check(
      missing.code === 1 && missing.stderr.includes('ratchet: NOT_FOUND'),
      'npx ratchet get <unknown id> exits 1 with NOT_FOUND',
      `exit ${String(missing.code)}: ${missing.stderr.trim()}`,
    )

    // ---- an edge/browser bundle of the client ----
    const bundle = await run(
      'node',
      [
        '--input-type=module',
        '-e',
        `import { build } from 'esbuild'
         const result = await build({ entryPoints: ['src/edge.ts'], bundle: true, platform: 'browser',
           format: 'esm', target: 'es2022', minify: true, metafile: true, outfile: 'out/edge.js', logLevel: 'error' })
         console.log(JSON.stringify(result.metafile))`,
      ],
      { cwd: web },
    )
    if (check(bundle.code === 0, 'esbuild bundles src/edge.ts for the browser', bundle.stderr.trim())) {
      const metafile = JSON.parse(bundle.stdout) as {
        inputs: Record<string, unknown>
        outputs: Record<string, { bytes: number; imports: { path: string; external?: boolean }[] }>
      }
      const inputs = Object.keys(metafile.inputs)
      // The client shares its error classes with the engine: @ratchet/core/errors, and only it.
      const forbidden = inputs.filter(
        (path) =>
          /@ratchet\/(core|orpc|server|storage|testing)\/|server\/src\/tasks|node_modules\/zod\//.test(
            path,
          ) && !path.endsWith('@ratchet/core/dist/errors.js'),
      )
      const output = metafile.outputs['out/edge.js']!
      const code = readFileSync(join(web, 'out/edge.js'))
      const nodeImports = output.imports.filter((i) => i.external || i.path.startsWith('node:'))
      check(
        forbidden.length === 0 && inputs.some((path) => path.includes('@ratchet/client/dist/')),
        'edge bundle: @ratchet/client (and @ratchet/core/errors) only, no task code, no engine, no zod',
        forbidden.join(', ') || `${inputs.length} inputs`,
      )
      check(
        nodeImports.length === 0 && !/["']node:/.test(code.toString()),
        'edge bundle: no node: imports, nothing external',
        nodeImports.map((i) => i.path).join(', ') ||
          `${(output.bytes / 1024).toFixed(1)} kB minified, ${(gzipSync(code).length / 1024).toFixed(1)} kB gzipped`,
      )
      const edge = await run(
        'node',
        [
          '--input-type=module',
          '-e',
          `const { handle } = await import('./out/edge.js')
           const response = await handle(new Request('http://edge/', { method: 'POST', body: JSON.stringify({ name: 'Edge' }) }),
             { RATCHET_URL: process.env.RATCHET_URL, RATCHET_API_KEY: process.env.RATCHET_API_KEY })
           console.log(await response.text())`,
        ],
        { cwd: web, env: { RATCHET_URL: server.url, RATCHET_API_KEY: API_KEY }, timeoutMs: 30_000 },
      )
      check(
        edge.stdout.includes('"status":"completed"') && edge.stdout.includes('Hello, Edge!'),
        'edge bundle runs: enqueues and waits through the server',
        edge.stdout.trim() || edge.stderr,
      )
    }
    // ---- an edge bundle of a web app's functions route (@ratchet/orpc/functions) ----
    const functionsBundle = await run(
      'node',
      [
        '--input-type=module',
        '-e',
        `const { build } = await import(${JSON.stringify(join(web, 'node_modules/esbuild/lib/main.js'))})
         const result = await build({ entryPoints: ['src/functions.ts'], bundle: true, platform: 'browser',
           format: 'esm', target: 'es2022', minify: true, metafile: true, outfile: 'out/functions.js', logLevel: 'error' })
         console.log(JSON.stringify(result.metafile))`,
      ],
      { cwd: serverDir },
    )
    if (
      check(
        functionsBundle.code === 0,
        'esbuild bundles a functions route (src/functions.ts) for an edge runtime',
        functionsBundle.stderr.trim(),
      )
    ) {
      const metafile = JSON.parse(functionsBundle.stdout) as {
        inputs: Record<string, unknown>
        outputs: Record<string, { bytes: number; imports: { path: string; external?: boolean }[] }>
      }
      const inputs = Object.keys(metafile.inputs)
      const output = metafile.outputs['out/functions.js']!
      const code = readFileSync(join(serverDir, 'out/functions.js'))
      const nodeImports = output.imports.filter((i) => i.external || i.path.startsWith('node:'))
      const engine = inputs.filter((path) =>
        /@ratchet\/(server|storage|testing)\/|better-sqlite3|node_modules\/ajv\//.test(path),
      )
      check(
        nodeImports.length === 0 && engine.length === 0 && !/["']node:/.test(code.toString()),
        'functions route bundle: no node: imports, no engine, no storage, no ajv',
        nodeImports.map((i) => i.path).join(', ') ||
          engine.join(', ') ||
          `${(output.bytes / 1024).toFixed(1)} kB minified, ${(gzipSync(code).length / 1024).toFixed(1)} kB gzipped`,
      )
    }
    const stopped = await stopRatchet(server)
    const stopLogs = server.logs.map((entry) => entry.msg)
    server = undefined
    check(
      stopped !== 'timeout' && stopLogs.at(-1) === 'ratchet server stopped',
      'ratchet start: SIGTERM (Ctrl-C) drains and stops the server',
      `last log "${String(stopLogs.at(-1))}"`,
    )

    // ---- a JavaScript tasks module: no TypeScript loader ----
    server = await startRatchet(serverDir, ['--tasks', './js/tasks.mjs'], join(dir, 'data-js'))
    const probe = await run(
      'node',
      [
        '--input-type=module',
        '-e',
        `import { createClient } from '@ratchet/client'
         const ratchet = createClient({ url: process.env.RATCHET_URL, apiKey: process.env.RATCHET_API_KEY })
         console.log(JSON.stringify(await ratchet.tasks.probe.run({})))`,
      ],
      { cwd: web, env: { RATCHET_URL: server.url, RATCHET_API_KEY: API_KEY }, timeoutMs: 30_000 },
    )
    check(
      probe.stdout.includes('"typescript":false') && probe.stdout.includes('ERR_UNKNOWN_FILE_EXTENSION'),
      'a JavaScript tasks module runs with no TypeScript loader registered (its import of a .ts file fails)',
      probe.stdout.trim() || probe.stderr,
    )
    await stopRatchet(server)
    server = undefined

    // ---- the project's own tests ----
    const tests = await run('npx', ['--no-install', 'vitest', 'run'], { cwd: serverDir, timeoutMs: 120_000 })
    check(
      tests.code === 0 && /Tests\s+3 passed/.test(tests.stdout),
      "the project's own vitest tests with @ratchet/testing pass (its tasks, and its app-hosted function through its route)",
      tests.code === 0 ? `${tests.ms} ms` : tests.stdout + tests.stderr,
    )
    const broken = await run('npx', ['--no-install', 'vitest', 'run'], {
      cwd: serverDir,
      env: { RATCHET_CONSUMER_BREAK: '1' },
      timeoutMs: 120_000,
    })
    const brokenOutput = broken.stdout + broken.stderr
    const failedAsExpected =
      broken.code === 1 &&
      /Tests\s+1 failed\s*\|\s*2 passed/.test(brokenOutput) &&
      /Expected.*Hello, nobody!/s.test(brokenOutput) &&
      brokenOutput.includes('Hello, Ada!')
    check(
      failedAsExpected,
      'the same test with a wrong expectation fails (the assertion runs)',
      `exit ${String(broken.code)}${failedAsExpected ? '' : `: ${brokenOutput.slice(-3000)}`}`,
    )
  } catch (error) {
    check(false, 'consumer test aborted', error instanceof Error ? error.message : String(error))
  } finally {
    if (server) await stopRatchet(server)
    if (process.env.RATCHET_CONSUMER_KEEP) console.log(`kept ${dir}`)
    else rmSync(dir, { recursive: true, force: true })
  }
  console.log(
    `consumer test: ${tally.passed} passed, ${tally.failed} failed (${Math.round((Date.now() - started) / 1000)} s)`,
  )
  process.exitCode = tally.failed === 0 ? 0 : 1
}

await main()
