/**
 * Reads a server-sent event stream (`text/event-stream`) from a fetch Response, in Node and in a
 * browser alike: each event's `data:` lines joined, parsed as JSON and read with `schema`. Comment
 * lines (`: keepalive`) and other fields are skipped. An event that does not parse is the node's
 * fault: PROTOCOL_ERROR, and the stream ends.
 */
import type { z } from 'zod'
import { CovenantError, parseOrThrow } from '../errors/index.ts'

/** One event's data is at most this long; a longer line means the stream is not what it claims. */
const MAX_EVENT_CHARS = 1024 * 1024

export async function* readEventStream<S extends z.ZodType>(
  res: Response,
  schema: S,
  what: string,
): AsyncGenerator<z.output<S>> {
  if (res.body === null) return
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  let data: string[] = []
  try {
    while (true) {
      const { value, done } = await reader.read()
      if (done) return
      buffer += value
      let newline = buffer.indexOf('\n')
      while (newline >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, '')
        buffer = buffer.slice(newline + 1)
        newline = buffer.indexOf('\n')
        if (line === '') {
          if (data.length > 0) {
            let json: unknown
            try {
              json = JSON.parse(data.join('\n'))
            } catch {
              throw new CovenantError('PROTOCOL_ERROR', `${what} sent an event that is not JSON`)
            }
            data = []
            yield parseOrThrow(schema, json, 'PROTOCOL_ERROR', `${what} sent a malformed event`)
          }
        } else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''))
      }
      if (buffer.length + data.reduce((n, d) => n + d.length, 0) > MAX_EVENT_CHARS)
        throw new CovenantError('PROTOCOL_ERROR', `${what} sent an event line longer than allowed`)
    }
  } finally {
    await reader.cancel().catch(() => {})
  }
}
