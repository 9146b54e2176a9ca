/**
 * OpenTelemetry tracing, end to end: an SDK registered in the test (in-memory exporter), a
 * Ratchet server on port 0, a real web app on another port whose procedure is a task. An
 * enqueue over HTTP with a `traceparent` puts the execution's attempts in that trace; each
 * attempt and step is a span with its attributes; a child's attempt is a child span of its
 * parent's attempt; and the call to the app carries the attempt's `traceparent`.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { context, propagation, trace } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base'
import type { RouterClient } from '@orpc/server'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { task } from '@ratchet/core'
import { createClient } from '@ratchet/client'
import { createAppClient, remoteTasks, type RatchetCallContext } from '@ratchet/orpc'
import { createRatchetFetchHandler } from '@ratchet/orpc/app'
import { serveFetch } from '@ratchet/orpc/node'
import { createServer, type RatchetServer } from '@ratchet/server'
import { appRouter, type AppRouter } from './app-router'

const SECRET = 'app-secret-0123456789abcdef0123456789'
const API_KEY = 'test-key-0123456789abcdef'
const exporter = new InMemorySpanExporter()
/** The `traceparent` of each call the app received. */
const traceparents: (string | null)[] = []

function makeTasks(appUrl: string) {
  const app = createAppClient<RouterClient<AppRouter, RatchetCallContext>>({
    url: `${appUrl}/rpc`,
    secret: SECRET,
  })
  const remote = remoteTasks(app, { say: { procedure: 'echo.say', retry: { maxAttempts: 1 } } })
  const workflow = task({
    id: 'workflow',
    input: z.object({ text: z.string() }),
    run: async ({ text }, ctx) => {
      const upper = await ctx.step('upper', () => text.toUpperCase())
      const said = await ctx.child('say', remote.say, { text: upper })
      return ctx.step('wrap', () => `[${said.said}]`)
    },
  })
  return { ...remote, workflow }
}
type Tasks = ReturnType<typeof makeTasks>

let app: Awaited<ReturnType<typeof serveFetch>>
let ratchet: RatchetServer
let url: string
let dir: string

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  propagation.setGlobalPropagator(new W3CTraceContextPropagator())
  trace.setGlobalTracerProvider(
    new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
  )
  const handler = createRatchetFetchHandler(appRouter, { secret: SECRET })
  app = await serveFetch((request) => {
    traceparents.push(request.headers.get('traceparent'))
    return handler(request)
  })
  dir = mkdtempSync(join(tmpdir(), 'ratchet-tracing-'))
  ratchet = await createServer({
    tasks: makeTasks(app.url),
    databaseUrl: `file:${join(dir, 'ratchet.db')}`,
    port: 0,
    apiKeys: [{ name: 'test', secret: API_KEY }],
    drainMs: 500,
  })
  ;({ url } = await ratchet.start())
})

afterAll(async () => {
  await ratchet.stop()
  await app.close()
  rmSync(dir, { recursive: true, force: true })
  trace.disable()
  propagation.disable()
  context.disable()
})

const TRACE_ID = '0af7651916cd43dd8448eb211c80319c'
const CALLER_SPAN = 'b7ad6b7169203331'

const spanId = (span: ReadableSpan) => span.spanContext().spanId
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId

describe('tracing with a registered OpenTelemetry SDK', () => {
  it('an enqueue with a traceparent: attempt and step spans in that trace, the child attempt under its parent, traceparent sent to the app', async () => {
    const client = createClient<Tasks>({
      url,
      apiKey: API_KEY,
      headers: { traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` },
    })
    const { executionId } = await client.tasks.workflow.enqueue({ text: 'hi' })
    const done = await createClient<Tasks>({ url, apiKey: API_KEY }).executions.wait(executionId, {
      timeoutMs: 20_000,
    })
    expect(done).toMatchObject({ status: 'completed', output: '[HI]' })

    const spans = exporter.getFinishedSpans()
    const attempts = spans.filter((s) => s.name.startsWith('ratchet.attempt '))
    // The workflow parks while its child runs: two attempts of it, one of the child.
    const workflowAttempts = attempts.filter((s) => s.attributes['ratchet.task_id'] === 'workflow')
    expect(
      workflowAttempts.map((s) => [s.attributes['ratchet.run'], s.attributes['ratchet.outcome']]),
    ).toEqual([
      [1, 'parked'],
      [2, 'completed'],
    ])
    for (const attempt of workflowAttempts) {
      expect(attempt.spanContext().traceId).toBe(TRACE_ID)
      expect(parentOf(attempt)).toBe(CALLER_SPAN)
      expect(attempt.attributes).toMatchObject({
        'ratchet.execution_id': executionId,
        'ratchet.task_id': 'workflow',
        'ratchet.attempt': 1,
      })
    }
    // Steps recorded for the first time are spans under their attempt (replays are not).
    const steps = spans.filter((s) => s.name.startsWith('ratchet.step '))
    const stepsOf = (attempt: ReadableSpan) =>
      steps
        .filter((s) => parentOf(s) === spanId(attempt))
        .map((s) => [
          s.attributes['ratchet.step.name'],
          s.attributes['ratchet.step.kind'],
          s.attributes['ratchet.step.position'],
        ])
    expect(stepsOf(workflowAttempts[0]!)).toEqual([
      ['upper', 'step', 0],
      ['say', 'child', 1],
    ])
    // The resumed attempt replays `upper` and reads the child's end from its record: one new step.
    expect(stepsOf(workflowAttempts[1]!)).toEqual([['wrap', 'step', 2]])
    // The child's attempt: a child span of the attempt that started it, same trace.
    const childAttempt = attempts.find((s) => s.attributes['ratchet.task_id'] === 'say')!
    expect(childAttempt.attributes).toMatchObject({ 'ratchet.run': 1, 'ratchet.outcome': 'completed' })
    expect(childAttempt.spanContext().traceId).toBe(TRACE_ID)
    expect(parentOf(childAttempt)).toBe(spanId(workflowAttempts[0]!))
    // The app received the child attempt's trace context.
    expect(traceparents).toContain(`00-${TRACE_ID}-${spanId(childAttempt)}-01`)
  })

  it('without a traceparent an attempt starts a trace of its own, which the call to the app continues', async () => {
    exporter.reset()
    const client = createClient<Tasks>({ url, apiKey: API_KEY })
    const { executionId } = await client.tasks.say.enqueue({ text: 'alone' })
    expect(await client.executions.wait(executionId, { timeoutMs: 20_000 })).toMatchObject({
      status: 'completed',
    })
    const [attempt] = exporter.getFinishedSpans().filter((s) => s.name === 'ratchet.attempt say')
    expect(attempt).toBeDefined()
    expect(parentOf(attempt!)).toBeUndefined()
    expect(traceparents.at(-1)).toBe(`00-${attempt!.spanContext().traceId}-${spanId(attempt!)}-01`)
  })
})
