/** Nearest-rank percentile, as the peers' harness computes it. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!
}

export function summarize(samples: readonly number[]) {
  const sorted = [...samples].sort((a, b) => a - b)
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) }
}

export const round = (n: number, digits = 2) => Number(n.toFixed(digits))

/** p50 / p95 / p99 of `values`, rounded as the benchmark's tables print them. */
export function percentilesMs(values: readonly number[]) {
  const s = summarize(values)
  return { p50: round(s.p50), p95: round(s.p95), p99: round(s.p99) }
}
