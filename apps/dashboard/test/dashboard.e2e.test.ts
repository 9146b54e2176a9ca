/**
 * The dashboard end to end, in a real headless Chromium (Debian's, through playwright-core)
 * against a real server on port 0 with an API key and real executions: log in through the
 * form, visit every page, perform every action, and check each effect through the API with a
 * separate client. Screenshots of every page go to test-artifacts/dashboard/.
 */
import { rmSync } from 'node:fs'
import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createClient } from '@ratchet/client'
import type { RatchetServer } from '@ratchet/server'
import {
  buildDashboard,
  CHROMIUM,
  CHROMIUM_ARGS,
  HAS_CHROMIUM,
  screenshot,
  SKIP_REASON,
  startServer,
  until,
} from './browser'
import { tasks } from './tasks'

const API_KEY = 'dashboard-e2e-key-0123456789'
const STEP_MS = 60_000

if (!HAS_CHROMIUM) console.warn(`dashboard end-to-end test skipped: ${SKIP_REASON}`)

describe.skipIf(!HAS_CHROMIUM)(
  `dashboard in Chromium${HAS_CHROMIUM ? '' : ` (skipped: ${SKIP_REASON})`}`,
  () => {
    let server: RatchetServer
    let url: string
    const cleanup: string[] = []
    let browser: Browser
    let context: BrowserContext
    let page: Page
    let api: ReturnType<typeof createClient<typeof tasks>>
    type Seeded =
      | 'workflow'
      | 'flaky'
      | 'approval'
      | 'webhook'
      | 'sleeper'
      | 'bulk1'
      | 'bulk2'
      | 'keyed'
      | 'signup'
      | 'event'
    const ids = {} as Record<Seeded, string>

    const status = async (id: string) => (await api.executions.get(id)).status
    const open = async (path: string) => {
      await page.goto(`${url}${path}`)
      await page.waitForLoadState('domcontentloaded')
    }

    beforeAll(async () => {
      const dashboardDir = await buildDashboard()
      cleanup.push(dashboardDir)
      const started = await startServer(tasks, dashboardDir, API_KEY)
      server = started.server
      url = started.url
      cleanup.push(started.dir)
      api = createClient<typeof tasks>({ url, apiKey: API_KEY })

      // Real executions of every kind, settled before the browser looks at them.
      ids.workflow = (await api.tasks.workflow.enqueue({ size: 3 })).executionId
      ids.flaky = (await api.tasks.flaky.enqueue({})).executionId
      ids.approval = (await api.tasks.approval.enqueue({})).executionId
      ids.webhook = (await api.tasks.webhook.enqueue({ key: 'pay-42' })).executionId
      ids.sleeper = (await api.tasks.sleeper.enqueue({})).executionId
      ids.bulk1 = (await api.tasks.sleeper.enqueue({}, { idempotencyKey: 'bulk-1' })).executionId
      ids.bulk2 = (await api.tasks.sleeper.enqueue({}, { idempotencyKey: 'bulk-2' })).executionId
      ids.keyed = (
        await api.tasks.greet.enqueue({ name: 'Key', times: 1 }, { idempotencyKey: 'order-777' })
      ).executionId
      const published = await api.events.publish(
        { type: 'user.created', userId: 'u-1' },
        { id: 'evt-signup-1' },
      )
      ids.signup = published.executions[0]!.executionId
      ids.event = published.eventId
      await api.executions.wait(ids.workflow, { timeoutMs: 20_000 })
      await api.executions.wait(ids.flaky, { timeoutMs: 10_000 })
      for (const id of [ids.approval, ids.webhook, ids.sleeper, ids.bulk1, ids.bulk2])
        await until(
          () => status(id),
          (s) => s === 'waiting',
        )

      const { chromium } = await import('playwright-core')
      browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS })
      context = await browser.newContext({ viewport: { width: 1440, height: 900 } })
      page = await context.newPage()
      page.setDefaultTimeout(15_000)
    }, 120_000)

    // A failed step leaves a picture of the page it failed on.
    afterEach(async (context) => {
      if (context.task.result?.state === 'fail' && page)
        await screenshot(page, `failed-${context.task.name.replace(/\W+/g, '-').slice(0, 60)}`)
    })

    afterAll(async () => {
      await browser?.close()
      await server?.stop()
      for (const dir of cleanup) rmSync(dir, { recursive: true, force: true })
    })

    it(
      'logs in through the form: a wrong key is refused; the cookie is HttpOnly and SameSite=Strict',
      async () => {
        await open('/')
        await expect.poll(() => page.getByRole('form', { name: 'Log in' }).isVisible()).toBe(true)
        await screenshot(page, 'login')
        await page.fill('input[name=apiKey]', 'wrong-key-0000000000000')
        await page.click('button[type=submit]')
        await page.getByRole('alert').waitFor()
        expect(await page.getByRole('alert').textContent()).toContain('invalid API key')

        await page.fill('input[name=apiKey]', API_KEY)
        await page.click('button[type=submit]')
        await page.getByRole('heading', { name: 'Executions' }).waitFor()
        const cookie = (await context.cookies()).find((c) => c.name === 'ratchet_session')
        expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/' })
        expect(cookie!.value).toMatch(/^ops\./)
        // The page cannot read it.
        expect(await page.evaluate<string>('document.cookie')).not.toContain('ratchet_session')
      },
      STEP_MS,
    )

    it(
      'refuses a cookie-authenticated write without the CSRF header (403), even from the page itself',
      async () => {
        const answer = await page.evaluate(async () => {
          const res = await fetch('/api/executions', {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ taskId: 'greet', input: { name: 'csrf', times: 1 } }),
          })
          return { status: res.status, body: (await res.json()) as { code: string } }
        })
        expect(answer).toMatchObject({ status: 403, body: { code: 'CSRF_FAILED' } })
        const greets = await api.executions.list({ taskId: 'greet' })
        expect(greets.items.map((e) => e.id)).toEqual([ids.keyed])
      },
      STEP_MS,
    )

    it(
      'lists executions, filters by status, finds one by idempotency key and updates live',
      async () => {
        await open('/executions')
        await page.locator(`tr[data-id="${ids.workflow}"]`).waitFor()
        await screenshot(page, 'executions')

        // A new execution appears without a reload (the change stream).
        const fresh = (await api.tasks.greet.enqueue({ name: 'Live', times: 1 })).executionId
        await page.locator(`tr[data-id="${fresh}"]`).waitFor({ timeout: 10_000 })

        await page.getByRole('button', { name: 'failed', exact: true }).click()
        await expect.poll(() => page.locator('tbody tr[data-id]').count()).toBe(1)
        expect(await page.locator('tbody tr[data-id]').getAttribute('data-id')).toBe(ids.flaky)
        expect(page.url()).toContain('status=failed')
        await screenshot(page, 'executions-filtered')

        // Root (the whole tree), parent (its children) and a time range, typed into the filters.
        await open('/executions')
        await page.getByLabel('Root id').fill(ids.workflow)
        await page.getByLabel('Root id').press('Enter')
        await expect.poll(() => page.locator('tbody tr[data-id]').count()).toBe(8)
        await open(`/executions?parent=${ids.workflow}`)
        await expect.poll(() => page.locator('tbody tr[data-id]').count()).toBe(4)
        await page.getByLabel('Created after').fill('2099-01-01T00:00')
        await expect.poll(() => page.locator('tbody tr[data-id]').count()).toBe(0)
        expect(page.url()).toContain('from=2099-01-01T00%3A00')

        await open('/executions')
        await page.getByLabel('Search by execution id or idempotency key').fill('order-777')
        await page.getByRole('button', { name: 'Search' }).click()
        await expect.poll(() => page.locator('tbody tr[data-id]').count()).toBe(1)
        expect(await page.locator('tbody tr[data-id]').getAttribute('data-id')).toBe(ids.keyed)
        // An id opens the execution.
        await page.getByLabel('Search by execution id or idempotency key').fill(ids.flaky)
        await page.getByRole('button', { name: 'Search' }).click()
        await page.waitForURL(`**/executions/${ids.flaky}`)
      },
      STEP_MS,
    )

    it(
      'shows a workflow: steps waterfall, waits as spans, child tree, history',
      async () => {
        await open(`/executions/${ids.workflow}`)
        const waterfall = page.getByRole('table', { name: 'Steps waterfall' })
        await waterfall.waitFor()
        for (const step of ['prepare', 'leaf-0', 'leaf-1', 'leaf-2', 'pipeline', 'finalize'])
          await waterfall.locator(`[data-step="${step}"]`).waitFor()
        expect(await waterfall.locator('.wf-wait').count()).toBeGreaterThanOrEqual(4)
        const tree = page.getByRole('list', { name: 'Child tree' })
        const children = await api.executions.list({ parentId: ids.workflow })
        expect(children.items).toHaveLength(4)
        for (const child of children.items) await tree.locator(`a[title="${child.id}"]`).waitFor()
        await page.getByRole('list', { name: 'History' }).waitFor()
        expect(await page.locator('.badge[data-status=completed]').count()).toBeGreaterThan(0)
        await screenshot(page, 'execution-workflow')

        // A leaf: its sleep is a wait span.
        const leaf = children.items.find((c) => c.taskId === 'leaf')!
        await open(`/executions/${leaf.id}`)
        await page.locator('[data-step="pause"] .wf-wait').waitFor()
        // Its (short, in-memory) sleep is over, like the leaf itself.
        expect(await page.locator('[data-step="pause"] .wf-dur').textContent()).not.toContain('waiting')
        await screenshot(page, 'execution-leaf')
      },
      STEP_MS,
    )

    it(
      'shows an error with its stack and cause',
      async () => {
        await open(`/executions/${ids.flaky}`)
        await page.getByText('upstream answered 503').first().waitFor()
        await page.getByText('connection reset by peer').first().waitFor()
        expect(await page.locator('.stack').count()).toBeGreaterThan(0)
        await screenshot(page, 'execution-failed')
      },
      STEP_MS,
    )

    it(
      'draws the workflow graph, coloured by status; a node opens its execution',
      async () => {
        await open(`/executions/${ids.workflow}/graph`)
        const tree = await api.executions.list({ rootId: ids.workflow, limit: 100 })
        // workflow + 3 leaves + pipeline + 3 add-one
        expect(tree.items).toHaveLength(8)
        await expect.poll(() => page.locator('.gnode').count()).toBe(8)
        expect(await page.locator('.gnode[data-status=completed]').count()).toBe(8)
        // The sequence is a chain (2 dashed edges), and the pipeline came after the 3 leaves (3 more).
        await expect.poll(() => page.locator('.react-flow__edge.then-edge').count()).toBe(5)
        await screenshot(page, 'graph')
        const pipeline = tree.items.find((e) => e.taskId === 'pipeline')!
        await page.locator(`.gnode[data-id="${pipeline.id}"]`).click()
        await page.waitForURL(`**/executions/${pipeline.id}`)
      },
      STEP_MS,
    )

    it(
      'lists tasks with counts and enqueues from the form generated from the schema',
      async () => {
        await open('/tasks')
        await page.locator('tr[data-task="workflow"]').waitFor()
        await expect
          .poll(() => page.locator('tr[data-task="flaky"] .status-fg-failed').textContent())
          .toBe('1')
        await screenshot(page, 'tasks')

        await open('/tasks/greet')
        await page.locator('.chart canvas').first().waitFor()
        // The two greets so far (from the API) are in the throughput chart's window.
        await expect
          .poll(() => page.getByText(/\d+ started · \d+ completed/).textContent())
          .toContain('2 completed')
        const form = page.getByRole('form', { name: 'Enqueue' })
        await form.locator('input[name=name]').fill('Ada')
        await form.locator('input[name=times]').fill('2')
        await form.locator('input[name=loud]').check()
        await form.locator('select[name=lang]').selectOption({ label: '"fr"' })
        await screenshot(page, 'task-greet')
        await form.getByRole('button', { name: 'Enqueue greet' }).click()
        await page.waitForURL(/\/executions\/[^/]+$/)
        const id = decodeURIComponent(page.url().split('/').pop()!)
        const execution = await api.executions.wait(id, { timeoutMs: 10_000 })
        expect(execution.input).toEqual({ name: 'Ada', times: 2, loud: true, lang: 'fr' })
        expect(execution).toMatchObject({
          taskId: 'greet',
          status: 'completed',
          output: 'BONJOUR ADA, BONJOUR ADA',
        })
      },
      STEP_MS,
    )

    it(
      'pauses a task’s queue from its page (work waits, the list shows it) and resumes it',
      async () => {
        await open('/tasks/greet')
        await page.getByRole('button', { name: 'Pause queue' }).click()
        await page.getByRole('status').filter({ hasText: 'Paused' }).waitFor()
        const pausedAt = async () => (await api.taskStats()).find((t) => t.taskId === 'greet')!.pausedAt
        expect(await pausedAt()).toBeInstanceOf(Date)
        const { executionId } = await api.tasks.greet.enqueue({ name: 'Held', times: 1 })
        await new Promise((resolve) => setTimeout(resolve, 500))
        expect(await status(executionId)).toBe('queued')
        await screenshot(page, 'task-paused')

        await open('/tasks')
        await page.locator('tr[data-task="greet"] .tag-paused').waitFor()
        expect(await page.locator('.tag-paused').count()).toBe(1)
        await screenshot(page, 'tasks-paused')

        await open('/tasks/greet')
        await page.getByRole('button', { name: 'Resume queue' }).click()
        await page.getByRole('button', { name: 'Pause queue' }).waitFor()
        expect(await api.executions.wait(executionId, { timeoutMs: 10_000 })).toMatchObject({
          status: 'completed',
          output: 'Hello Held',
        })
        expect(await pausedAt()).toBeNull()
      },
      STEP_MS,
    )

    it(
      'cancels, retries, signals and wakes up from the execution page',
      async () => {
        await open(`/executions/${ids.sleeper}`)
        await page.getByRole('button', { name: 'Cancel', exact: true }).click()
        await until(
          () => status(ids.sleeper),
          (s) => s === 'cancelled',
        )
        await page.getByRole('status').filter({ hasText: 'Cancelled' }).waitFor()

        const before = await api.executions.get(ids.flaky)
        await open(`/executions/${ids.flaky}`)
        await page.getByRole('button', { name: 'Retry', exact: true }).click()
        const retried = await until(
          () => api.executions.get(ids.flaky),
          (e) => e.runs > before.runs && e.status === 'failed',
        )
        expect(retried.runs).toBe(before.runs + 1)

        await open(`/executions/${ids.approval}`)
        await page.getByRole('button', { name: 'Signal…' }).click()
        await page.fill('input[name=signalName]', 'approve')
        await page.fill('textarea[name=signalPayload]', '{"ok": true}')
        await screenshot(page, 'execution-signal')
        await page.getByRole('button', { name: 'Send signal' }).click()
        const approved = await api.executions.wait(ids.approval, { timeoutMs: 10_000 })
        expect(approved).toMatchObject({ status: 'completed', output: { ok: true } })

        await open(`/executions/${ids.webhook}`)
        await page.getByRole('button', { name: 'Wake up…' }).click()
        // The key of the pending wake-up is filled in from the execution's steps.
        await expect.poll(() => page.inputValue('input[name=wakeupKey]')).toBe('pay-42')
        await page.fill('textarea[name=wakeupOutput]', '{"paid": true}')
        await page.getByRole('form', { name: 'Wake up' }).getByRole('button', { name: 'Wake up' }).click()
        const woken = await api.executions.wait(ids.webhook, { timeoutMs: 10_000 })
        expect(woken).toMatchObject({ status: 'completed', output: { paid: true } })
      },
      STEP_MS,
    )

    it(
      'bulk-cancels and bulk-retries a selection',
      async () => {
        await open('/executions?task=sleeper&status=waiting')
        await expect.poll(() => page.locator('tbody tr[data-id]').count()).toBe(2)
        await page.getByLabel(`Select ${ids.bulk1}`).check()
        await page.getByLabel(`Select ${ids.bulk2}`).check()
        await screenshot(page, 'executions-selection')
        await page.getByRole('button', { name: 'Cancel selected' }).click()
        await page.getByRole('status').filter({ hasText: 'Cancelled 2 of 2' }).waitFor()
        expect([await status(ids.bulk1), await status(ids.bulk2)]).toEqual(['cancelled', 'cancelled'])

        await open('/executions?task=sleeper&status=cancelled')
        await expect.poll(() => page.locator('tbody tr[data-id]').count()).toBe(3)
        await page.getByLabel(`Select ${ids.bulk1}`).check()
        await page.getByLabel(`Select ${ids.bulk2}`).check()
        await page.getByRole('button', { name: 'Retry selected' }).click()
        await page.getByRole('status').filter({ hasText: 'Retried 2 of 2' }).waitFor()
        for (const id of [ids.bulk1, ids.bulk2]) expect(await status(id)).not.toBe('cancelled')
        expect(await status(ids.sleeper)).toBe('cancelled')
      },
      STEP_MS,
    )

    it(
      'shows the event log with the executions each event started',
      async () => {
        await open('/events')
        const row = page.locator(`tr[data-event="${ids.event}"]`)
        await row.waitFor()
        await row.locator(`a[title="${ids.signup}"]`).waitFor()
        await row.locator('.badge[data-status=completed]').waitFor()
        await screenshot(page, 'events')
      },
      STEP_MS,
    )

    it(
      'logs out: the cookie is cleared and the login form is back',
      async () => {
        await open('/executions')
        await page.getByRole('button', { name: 'Log out' }).click()
        await page.getByRole('form', { name: 'Log in' }).waitFor()
        expect((await context.cookies()).find((c) => c.name === 'ratchet_session')).toBeUndefined()
        expect(await page.evaluate(async () => (await fetch('/auth/session')).status)).toBe(401)
      },
      STEP_MS,
    )
  },
)
