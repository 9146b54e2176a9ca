import { useEffect, useRef, useState } from 'react'
import { client } from './api'

export interface LiveOptions {
  taskId?: string
  rootId?: string
  /** Called (at most every 300 ms) after status changes arrive. */
  onChange: () => void
}

/**
 * Follows `executions.changes` (server-sent events) while the component is mounted and calls
 * `onChange` when something moved. Reconnects after a dropped stream, resuming after the last
 * change it saw. Returns whether the stream is connected.
 */
export function useLiveChanges({ taskId, rootId, onChange }: LiveOptions): boolean {
  const [connected, setConnected] = useState(false)
  const callback = useRef(onChange)
  callback.current = onChange

  useEffect(() => {
    const abort = new AbortController()
    let timer: ReturnType<typeof setTimeout> | undefined
    let lastEventId: string | undefined
    const notify = () => {
      timer ??= setTimeout(() => {
        timer = undefined
        callback.current()
      }, 300)
    }
    const run = async () => {
      for (let failures = 0; !abort.signal.aborted;) {
        try {
          const stream = await client.executions.changes(
            { ...(taskId ? { taskId } : {}), ...(rootId ? { rootId } : {}) },
            { signal: abort.signal, ...(lastEventId ? { lastEventId } : {}) },
          )
          setConnected(true)
          failures = 0
          for await (const change of stream) {
            lastEventId = change.cursor
            notify()
          }
        } catch {
          if (abort.signal.aborted) return
          failures++
        }
        setConnected(false)
        await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 500 * 2 ** failures)))
      }
    }
    void run()
    return () => {
      abort.abort()
      clearTimeout(timer)
    }
  }, [taskId, rootId])

  return connected
}
