/**
 * The replay machinery under `RunContext` (see the summary on `AttemptHost`): positions taken
 * in call order and checked against the record, record writes, and the park once nothing but
 * blocked waits is in flight. run-context.ts keeps what a task calls.
 */
import { defer } from './defer'
import { PATCH_PREFIX, WAIT_FOREVER, checkStepName, replayMismatch, type StepKind } from './durable-record'
import { DuplicateStepError, NonDeterminismError, deserializeError, type StoredError } from './errors'
import type { AttemptHost } from './run-context'
import type { NewExecution, RunState, SignalRow, StepRow } from './storage'

type Outcome<T> = { value: T } | { blocked: number | undefined }

/** Where a recorded failure sits in the record. */
export interface RecordedStep {
  position: number
  name: string
}

/** The replay state and machinery of one attempt's `RunContext`. */
export abstract class Replayer {
  private nextPosition = 0
  // Allocated on first use: most tasks never call a step, and one context is made per attempt.
  private names: Set<string> | undefined
  private consumedSignalsSet: Set<number> | undefined
  private busy = 0
  // Bodies of `perform` not yet decided (a subset of `busy`, which also counts holds).
  private deciding = 0
  private blocked = 0
  private wakeAts: number[] | undefined
  private parkScheduled = false
  private closed = false
  private index: { byPosition: Map<number, StepRow>; byName: Map<string, StepRow> } | undefined
  // Errors that are a record's result (a step's, a wait's, a child's), with where that record
  // sits: a retry of the attempt would replay them again.
  private recordedFailures: WeakMap<object, RecordedStep> | undefined
  // Signal waits scan the inbox one at a time (see scanInbox).
  private inboxTurn: Promise<unknown> | undefined

  constructor(protected readonly host: AttemptHost) {}

  protected get consumedSignals(): Set<number> {
    return (this.consumedSignalsSet ??= new Set())
  }

  /** The attempt is over (settled or parked): nothing more is recorded or parked. */
  close(): void {
    this.closed = true
  }

  /**
   * The record whose result `error` is (a step's, a wait's or a child's error, thrown the first
   * time or replayed), or `undefined`. An attempt that fails with it is not retried: the next
   * attempt would replay the same failure. `executions.retry` forgets that record.
   */
  recordedFailureOf(error: unknown): RecordedStep | undefined {
    return typeof error === 'object' && error !== null ? this.recordedFailures?.get(error) : undefined
  }

  protected noteRecordedFailure(error: unknown, position: number, name: string): void {
    if (typeof error === 'object' && error !== null)
      (this.recordedFailures ??= new WeakMap()).set(error, { position, name })
  }

  /** A finished record's result: its value, or its error thrown (and noted as recorded). */
  protected replay<T>(record: StepRow): T {
    if (record.status !== 'failed') return (record.value === null ? undefined : JSON.parse(record.value)) as T
    const error = deserializeError(JSON.parse(record.error ?? '{}') as StoredError)
    this.noteRecordedFailure(error, record.position, record.name)
    throw error
  }

  /**
   * Runs one signal wait's scan of the inbox after the scans started before it have decided.
   * A scan may await an async `schema`; if two waits scanned at once, one could skip a signal
   * the other was still checking and then let go of (its `where` said no), and both would
   * block with a matching signal in the inbox. One at a time, in call order, each sees what
   * the earlier ones left.
   */
  protected scanInbox<R>(scan: (inbox: SignalRow[]) => Promise<R>): Promise<R> {
    const run = (this.inboxTurn ?? Promise.resolve()).then(async () => scan(await this.host.loadInbox()))
    this.inboxTurn = run.catch(() => undefined)
    return run
  }

  /**
   * Takes the next position for `name` now, then (asynchronously) checks it against the
   * record and runs `body`. A blocked outcome becomes a promise that never settles.
   */
  protected perform<T>(
    name: string,
    kind: StepKind,
    body: (record: StepRow | undefined, position: number, state: RunState) => Promise<Outcome<T>>,
  ): Promise<T> {
    let position: number
    try {
      position = this.take(name)
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)))
    }
    this.busy++
    this.deciding++
    const outcome = (async () => {
      try {
        const state = await this.host.loadState()
        const record = this.check(state, position, name, kind)
        const within = record === undefined ? this.host.withinStep : undefined
        if (within) return await within({ name, kind, position }, () => body(record, position, state))
        return await body(record, position, state)
      } finally {
        this.deciding--
        this.busy--
        this.maybePark()
      }
    })()
    return outcome.then((result) => ('value' in result ? result.value : this.block(result.blocked)))
  }

  private take(name: string): number {
    checkStepName(name)
    if (this.closed) throw new Error(`ctx used after its attempt ended (step "${name}")`)
    this.names ??= new Set()
    if (this.names.has(name)) {
      const error = new DuplicateStepError(name)
      this.host.poison(error)
      throw error
    }
    this.names.add(name)
    return this.nextPosition++
  }

  private indexOf(state: RunState): NonNullable<Replayer['index']> {
    return (this.index ??= {
      byPosition: new Map(state.steps.map((s) => [s.position, s])),
      byName: new Map(state.steps.map((s) => [s.name, s])),
    })
  }

  /** The record at `position`, after checking that the run asks for the same thing as before. */
  private check(state: RunState, position: number, name: string, kind: StepKind): StepRow | undefined {
    const index = this.indexOf(state)
    const atPosition = index.byPosition.get(position)
    const problem = replayMismatch(atPosition, index.byName.get(name)?.position, position, name, kind)
    if (problem) {
      const error = new NonDeterminismError(problem)
      this.host.poison(error)
      throw error
    }
    return atPosition
  }

  /**
   * `ctx.patched`: whether this execution takes the code path of change `changeId`. True, and
   * recorded as a step named `patched:<changeId>`, when the record has nothing at this position
   * yet (a new execution, or one that had not got this far before the deploy) or has the marker;
   * false, taking no position, when the record has another call here: an execution recorded by
   * the code before the change, which replays the old path. Must be awaited before the next
   * durable call: a call made meanwhile would take the position that a `false` gives back, and
   * fails the run.
   */
  protected async patch(changeId: string): Promise<boolean> {
    const name = `${PATCH_PREFIX}${changeId}`
    const position = this.take(name)
    this.busy++
    this.deciding++
    try {
      const state = await this.host.loadState()
      const index = this.indexOf(state)
      const atPosition = index.byPosition.get(position)
      if (atPosition && atPosition.name !== name && !index.byName.has(name)) {
        if (this.nextPosition !== position + 1) {
          const error = new NonDeterminismError(
            `ctx.patched("${changeId}") must be awaited before the next step or wait: another call took a position while it was deciding`,
          )
          this.host.poison(error)
          throw error
        }
        this.nextPosition = position
        this.names?.delete(name)
        return false
      }
      if (this.check(state, position, name, 'step')) return true
      await this.write({ position, name, kind: 'step', status: 'done', value: 'true' })
      return true
    } finally {
      this.deciding--
      this.busy--
      this.maybePark()
    }
  }

  protected async write(
    step: Partial<StepRow> & Pick<StepRow, 'position' | 'name' | 'kind' | 'status'>,
    consumeSignalSeq?: number,
    child?: NewExecution,
    behind = false,
  ): Promise<void> {
    await this.host.record(
      {
        step: {
          value: null,
          error: null,
          wakeAt: null,
          childId: null,
          signalName: null,
          wakeupKey: null,
          ...step,
        },
        ...(consumeSignalSeq !== undefined ? { consumeSignalSeq } : {}),
        ...(child ? { child } : {}),
      },
      { behind },
    )
  }

  /**
   * Queues the record of a wait that blocks, without holding the park for it: the executor
   * writes a park only after the execution's records queued before it (in a later
   * transaction), and turns the park into a failed attempt (retried) if one of them could not
   * be written. Saves one round trip per wait.
   */
  protected writeBehind(
    step: Partial<StepRow> & Pick<StepRow, 'position' | 'name' | 'kind' | 'status'>,
    child?: NewExecution,
  ): void {
    this.write(step, undefined, child, true).catch(() => {
      // Handled by the executor (see above); the run is blocked on this wait and never sees it.
    })
  }

  /**
   * Keeps the attempt from parking until the returned release is called, as a step body in
   * flight does: for a driver whose own work (an HTTP call) is not a step. Release once.
   */
  hold(): () => void {
    this.busy++
    let released = false
    return () => {
      if (released) return
      released = true
      this.busy--
      this.maybePark()
    }
  }

  /**
   * Resolves once every step and wait called so far has decided (returned, thrown or blocked)
   * and the continuations of those that settled have run: a later macrotask.
   */
  async decided(): Promise<void> {
    do await new Promise<void>((resolve) => defer(resolve))
    while (this.deciding > 0)
  }

  /** The record as of this attempt's claim, in position order. */
  async recorded(): Promise<StepRow[]> {
    const state = await this.host.loadState()
    return [...state.steps].sort((a, b) => a.position - b.position)
  }

  private block(wakeAt: number | undefined): Promise<never> {
    this.blocked++
    if (wakeAt !== undefined) (this.wakeAts ??= []).push(wakeAt)
    this.maybePark()
    return new Promise<never>(() => {})
  }

  private maybePark(): void {
    if (this.closed || this.parkScheduled || this.busy > 0 || this.blocked === 0) return
    this.parkScheduled = true
    defer(() => {
      this.parkScheduled = false
      if (this.closed || this.busy > 0 || this.blocked === 0) return
      this.host.park(this.wakeAts ? Math.min(...this.wakeAts) : WAIT_FOREVER)
    })
  }
}
