import { API_KEY } from './helpers'

export interface SseEvent {
  event: string
  id: string | undefined
  data: unknown
}

/**
 * Opens a server-sent event stream (`GET <url>/api<path>`) with the test API key and reads its
 * events as they arrive. `close` drops the connection.
 */
export async function openSse(url: string, path: string, headers: Record<string, string> = {}) {
  const controller = new AbortController()
  const response = await fetch(`${url}/api${path}`, {
    headers: { authorization: `Bearer ${API_KEY}`, ...headers },
    signal: controller.signal,
  })
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  /** The next event, or undefined once the stream ended. Comments (keep-alives) are skipped. */
  async function next(): Promise<SseEvent | undefined> {
    for (;;) {
      const end = buffer.indexOf('\n\n')
      if (end >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const fields = block.split('\n').filter((line) => line && !line.startsWith(':'))
        if (fields.length === 0) continue
        const field = (name: string) =>
          fields.filter((l) => l.startsWith(`${name}:`)).map((l) => l.slice(name.length + 1).trimStart())
        const data = field('data').join('\n')
        return {
          event: field('event')[0] ?? 'message',
          id: field('id')[0],
          data: data ? JSON.parse(data) : undefined,
        }
      }
      const { value, done } = await reader.read()
      if (done) return undefined
      buffer += value
    }
  }
  /** The next `count` message events; throws if the stream ends first. */
  async function take(count: number): Promise<SseEvent[]> {
    const events: SseEvent[] = []
    while (events.length < count) {
      const event = await next()
      if (!event) throw new Error(`the stream ended after ${events.length} of ${count} events`)
      if (event.event === 'message') events.push(event)
    }
    return events
  }
  return { response, next, take, close: () => controller.abort() }
}
