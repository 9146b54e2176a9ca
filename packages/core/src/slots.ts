/**
 * @internal The executor's `concurrency` slots. An attempt holds one from its claim until it
 * parks or ends (its park or result may still be queued: it runs no code) or is abandoned, and not while it is in an in-memory short sleep. A sleep that is over takes a slot
 * back before any new claim may: it waits here for one, and the claim loop counts it as taken.
 */
export class Slots {
  private busy = 0
  // In-memory sleeps that are over, waiting for a slot to go on (they go before new claims).
  private readonly waiting: (() => void)[] = []

  constructor(
    readonly concurrency: number,
    private readonly claimBatchSize: number,
    /** A slot was freed: the claim loop may claim again. */
    private readonly freed: () => void,
  ) {}

  /** Slots a claim may fill now (at most `claimBatchSize`): the free ones not promised to a sleeper. */
  free(): number {
    return Math.min(this.concurrency - this.busy - this.waiting.length, this.claimBatchSize)
  }

  take(attempt: { holdsSlot: boolean }): void {
    if (attempt.holdsSlot) return
    attempt.holdsSlot = true
    this.busy++
  }

  /** Frees the attempt's slot: first to a woken in-memory sleeper, else to the next claim. */
  release(attempt: { holdsSlot: boolean }): void {
    if (!attempt.holdsSlot) return
    attempt.holdsSlot = false
    this.busy--
    while (this.busy < this.concurrency && this.waiting.length > 0) this.waiting.shift()!()
    this.freed()
  }

  /**
   * Calls `resume` (which takes a slot) at once when a slot is free, else when one is freed,
   * before any new claim. Returns whether it was called now; `cancelWait` drops a waiting one.
   */
  resumeWhenFree(resume: () => void): boolean {
    if (this.busy < this.concurrency) {
      resume()
      return true
    }
    this.waiting.push(resume)
    return false
  }

  cancelWait(resume: () => void): void {
    const i = this.waiting.indexOf(resume)
    if (i !== -1) this.waiting.splice(i, 1)
  }
}
