import { useQuery } from '@tanstack/react-query'
import { useEffect, useMemo, useRef, useState } from 'react'
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import { errorMessage, orpc } from '../api'
import { duration, STATUS_COLOURS } from '../format'
import { ErrorNote, Loading } from '../ui'

const RANGES = [
  { label: '15 min', ms: 15 * 60_000 },
  { label: '1 h', ms: 3600_000 },
  { label: '6 h', ms: 6 * 3600_000 },
  { label: '24 h', ms: 24 * 3600_000 },
  { label: '7 d', ms: 7 * 24 * 3600_000 },
]

/**
 * Executions finished per bucket (completed, failed, timed out, cancelled, stacked as bars),
 * attempts started (line), and the failure rate (failed + timed out over finished, right axis).
 */
export function ThroughputChart({ taskId }: { taskId?: string }) {
  const [range, setRange] = useState(RANGES[1]!)
  // Rounded to the minute so the query key stays put between renders.
  const to = Math.ceil(Date.now() / 60_000) * 60_000
  const input = useMemo(
    () => ({ ...(taskId ? { taskId } : {}), from: new Date(to - range.ms), to: new Date(to), buckets: 60 }),
    [taskId, to, range.ms],
  )
  const data = useQuery(orpc.stats.throughput.queryOptions({ input, refetchInterval: 10_000 }))
  const box = useRef<HTMLDivElement>(null)

  useEffect(() => {
    const el = box.current
    if (!el || !data.data) return
    const items = data.data.items
    const xs = items.map((i) => i.at.getTime() / 1000)
    const rate = items.map((i) => {
      const finished = i.completed + i.failed + i.timed_out + i.cancelled
      return finished ? ((i.failed + i.timed_out) / finished) * 100 : null
    })
    // Stacked bars: each series is drawn as the running sum, with the values kept for the legend.
    const completed = items.map((i) => i.completed)
    const failed = items.map((i) => i.completed + i.failed)
    const timedOut = items.map((i) => i.completed + i.failed + i.timed_out)
    const cancelled = items.map((i) => i.completed + i.failed + i.timed_out + i.cancelled)
    const bars = uPlot.paths.bars!({ size: [0.8, 40] })
    const bar = (label: string, colour: string) => ({
      label,
      stroke: colour,
      fill: `${colour}cc`,
      paths: bars,
      points: { show: false },
    })
    const plot = new uPlot(
      {
        width: el.clientWidth,
        height: 240,
        scales: { x: { time: true }, rate: { range: [0, 100] } },
        axes: [
          { stroke: '#64748b', grid: { stroke: '#f1f5f9' } },
          { stroke: '#64748b', grid: { stroke: '#f1f5f9' }, label: 'per bucket', size: 50 },
          { scale: 'rate', side: 1, stroke: '#dc2626', grid: { show: false }, label: 'failure %', size: 50 },
        ],
        series: [
          {},
          // Drawn back to front so each stacked bar shows above the ones it includes.
          bar('cancelled', STATUS_COLOURS.cancelled),
          bar('timed out', STATUS_COLOURS.timed_out),
          bar('failed', STATUS_COLOURS.failed),
          bar('completed', STATUS_COLOURS.completed),
          { label: 'started', stroke: STATUS_COLOURS.running, width: 1.5, points: { show: false } },
          { label: 'failure %', scale: 'rate', stroke: '#dc2626', dash: [4, 4], width: 1.5, spanGaps: true },
        ],
        legend: { live: true },
      },
      [xs, cancelled, timedOut, failed, completed, items.map((i) => i.started), rate],
      el,
    )
    const resize = () => plot.setSize({ width: el.clientWidth, height: 240 })
    window.addEventListener('resize', resize)
    return () => {
      window.removeEventListener('resize', resize)
      plot.destroy()
    }
  }, [data.data])

  const totals = data.data?.items.reduce(
    (t, i) => ({
      completed: t.completed + i.completed,
      failed: t.failed + i.failed + i.timed_out,
      started: t.started + i.started,
    }),
    { completed: 0, failed: 0, started: 0 },
  )
  return (
    <div>
      <div className="toolbar">
        <div className="chips" role="group" aria-label="Time range">
          {RANGES.map((r) => (
            <button
              type="button"
              key={r.label}
              className={`chip ${r === range ? 'on' : ''}`}
              onClick={() => setRange(r)}
            >
              {r.label}
            </button>
          ))}
        </div>
        {totals && data.data && (
          <span className="muted small">
            {totals.started} started · {totals.completed} completed · {totals.failed} failed or timed out ·
            buckets of {duration(data.data.bucketMs)}
          </span>
        )}
      </div>
      {data.isError && <ErrorNote error={new Error(errorMessage(data.error))} />}
      {data.isPending && <Loading what="throughput" />}
      <div ref={box} className="chart" aria-label="Throughput chart" />
    </div>
  )
}
