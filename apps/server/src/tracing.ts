import {
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
  type Context,
  type Span,
} from '@opentelemetry/api'
import type {
  AttemptInfo,
  AttemptOutcome,
  EnqueuedExecution,
  ExecutionObserver,
  StepInfo,
} from '@ratchet/core'
import type { IncomingHttpHeaders } from 'node:http'

/** Executions enqueued here whose first attempt has not started yet, remembered with their trace parent. */
const MAX_PENDING_PARENTS = 10_000

/** What the API's proxy provider delegates to while no SDK is registered. */
const NO_SDK = new ProxyTracerProvider().getDelegate()

/**
 * Whether an OpenTelemetry SDK registered a tracer provider. Without one, the API would hand
 * out non-recording spans: skipping them saves their allocations on every attempt.
 */
function sdkRegistered(): boolean {
  const provider = trace.getTracerProvider()
  return !(provider instanceof ProxyTracerProvider) || provider.getDelegate() !== NO_SDK
}

const FAILED_OUTCOMES: ReadonlySet<AttemptOutcome> = new Set(['failed', 'timed_out', 'retried'])

/**
 * OpenTelemetry spans for attempts and steps, through `@opentelemetry/api` only: without a
 * registered SDK the API hands out non-recording spans and this does next to nothing (no span
 * is kept, no context is entered). With one (see docs/observability.md):
 * - one `ratchet.attempt <task>` span per attempt (attributes `ratchet.execution_id`,
 *   `ratchet.task_id`, `ratchet.run`, `ratchet.attempt`, and at its end `ratchet.outcome`),
 *   current while the task's code runs, so its own spans and outgoing calls are its children;
 * - one `ratchet.step <name>` span per step or wait the attempt records for the first time
 *   (`ratchet.step.name`, `ratchet.step.kind`, `ratchet.step.position`), current while the
 *   step's function runs;
 * - an execution enqueued over HTTP with a trace context (`traceparent`) has its attempts in
 *   that trace, as children of the enqueue's span; a child execution's attempts are children
 *   of the attempt that started it. The link lives in this process's memory only (nothing is
 *   stored): an attempt that starts after a restart, or in another replica, starts a new trace.
 */
export class AttemptTracer {
  private readonly tracer = trace.getTracer('@ratchet/server')
  /** Recording attempt spans by execution id, with the context they are current in. */
  private readonly attempts = new Map<string, { span: Span; context: Context; run: number }>()
  /** Trace parents of executions not finished yet, by execution id (bounded, oldest dropped). */
  private readonly parents = new Map<string, Context>()
  readonly observer: ExecutionObserver

  constructor() {
    this.observer = {
      enqueued: (execution, created) => this.enqueued(execution, created),
      attemptStarted: (attempt) => this.attemptStarted(attempt),
      attemptEnded: (attempt, outcome) => this.attemptEnded(attempt, outcome),
      withinStep: (attempt, step, fn) => this.withinStep(attempt, step, fn),
    }
  }

  /** The context an attempt's code runs in (its span current), or `undefined` when it is not traced. */
  contextOf(attempt: AttemptInfo): Context | undefined {
    if (this.attempts.size === 0) return undefined
    const traced = this.attempts.get(attempt.executionId)
    return traced?.run === attempt.run ? traced.context : undefined
  }

  private enqueued(execution: EnqueuedExecution, created: boolean): void {
    if (!created || !sdkRegistered()) return
    const parent = execution.parentId ? this.attempts.get(execution.parentId)?.context : context.active()
    if (!parent || !trace.getSpanContext(parent)) return
    if (this.parents.size >= MAX_PENDING_PARENTS) {
      const oldest = this.parents.keys().next()
      if (!oldest.done) this.parents.delete(oldest.value)
    }
    this.parents.set(execution.id, parent)
  }

  private attemptStarted(attempt: AttemptInfo): void {
    if (!sdkRegistered()) return
    const parent = this.parents.get(attempt.executionId) ?? ROOT_CONTEXT
    const span = this.tracer.startSpan(
      `ratchet.attempt ${attempt.taskId}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          'ratchet.execution_id': attempt.executionId,
          'ratchet.task_id': attempt.taskId,
          'ratchet.run': attempt.run,
          'ratchet.attempt': attempt.attempt,
        },
      },
      parent,
    )
    if (!span.isRecording()) return
    this.attempts.set(attempt.executionId, { span, context: trace.setSpan(parent, span), run: attempt.run })
  }

  private attemptEnded(attempt: AttemptInfo, outcome: AttemptOutcome): void {
    if (this.attempts.size === 0) return
    const traced = this.attempts.get(attempt.executionId)
    if (!traced || traced.run !== attempt.run) return
    this.attempts.delete(attempt.executionId)
    traced.span.setAttribute('ratchet.outcome', outcome)
    if (FAILED_OUTCOMES.has(outcome))
      traced.span.setStatus({ code: SpanStatusCode.ERROR, message: `attempt ${outcome}` })
    traced.span.end()
    if (outcome === 'completed' || outcome === 'failed' || outcome === 'timed_out')
      this.parents.delete(attempt.executionId)
  }

  private withinStep<T>(attempt: AttemptInfo, step: StepInfo, fn: () => Promise<T>): Promise<T> {
    const traced = this.attempts.get(attempt.executionId)
    if (!traced || traced.run !== attempt.run) return fn()
    const span = this.tracer.startSpan(
      `ratchet.step ${step.name}`,
      {
        attributes: {
          'ratchet.execution_id': attempt.executionId,
          'ratchet.step.name': step.name,
          'ratchet.step.kind': step.kind,
          'ratchet.step.position': step.position,
        },
      },
      traced.context,
    )
    return context.with(trace.setSpan(traced.context, span), fn).then(
      (value) => {
        span.end()
        return value
      },
      (error: unknown) => {
        span.recordException(error instanceof Error ? error : String(error))
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: error instanceof Error ? error.message : String(error),
        })
        span.end()
        throw error
      },
    )
  }
}

/**
 * The trace context an HTTP request carries (`traceparent`, or whatever the registered
 * propagator reads), or `undefined` when it carries none or a span is already current (an
 * HTTP instrumentation made one). Without a registered propagator: always `undefined`.
 */
export function requestTraceContext(headers: IncomingHttpHeaders): Context | undefined {
  if (trace.getSpan(context.active())) return undefined
  const extracted = propagation.extract(ROOT_CONTEXT, headers)
  return trace.getSpanContext(extracted) ? extracted : undefined
}
