/**
 * The calls feed: every call this node executed or gatewayed, kept in memory (the last
 * `keep`) and pushed to subscribers (`GET /v1/calls`, the dashboard). The exec service reports
 * what it has at hand — the request as it came, the receipt or signed refusal, or the result, the
 * error — and the feed keeps only who, what, how much and who signed: never arguments, values,
 * logs or messages.
 */
import type { CallEvent } from '../api/index.ts'
import { CovenantError } from '../errors/index.ts'
import type { Attempt, ExecReply, InvokeResult, Receipt } from '../exec/index.ts'
import { receiptToJSON } from '../exec/index.ts'

export interface CallFeedOptions {
  /** events kept for a new subscriber's backlog @default 500 */
  keep?: number
  /** subscribers at once; more get PEER_BUSY @default 32 */
  maxSubscribers?: number
  /** events queued for one slow subscriber before its stream is ended @default 1000 */
  maxQueued?: number
  /** @default Date.now */
  now?: () => number
}

/** What the exec service reports once an executor run ends. */
export interface ExecutedCall {
  /** the request as it arrived (a SignedRequest, unchecked) */
  request: unknown
  from: string
  reply?: ExecReply
  error?: unknown
  ms: number
}

/** What the exec service reports once a gateway call ends. */
export interface GatewayedCall {
  /** the request's JSON form as it arrived (unchecked) */
  request: unknown
  result?: InvokeResult
  error?: unknown
  ms: number
}

export interface CallFeed {
  executed(call: ExecutedCall): void
  gatewayed(call: GatewayedCall): void
  /** the last `n` events, oldest first */
  recent(n: number): CallEvent[]
  /**
   * The last `backlog` events, then each new one, until `signal` aborts or the subscriber falls
   * `maxQueued` events behind. Throws PEER_BUSY when `maxSubscribers` are already reading.
   */
  subscribe(opts: { backlog: number; signal: AbortSignal }): AsyncIterable<CallEvent>
}

/** The request fields the feed shows, read defensively from whatever arrived. */
function requestFields(request: unknown) {
  const r = (typeof request === 'object' && request !== null ? request : {}) as Record<string, unknown>
  const text = (v: unknown): string | null => (typeof v === 'string' ? v.slice(0, 256) : null)
  const int = (v: unknown): number | null => (Number.isSafeInteger(v) ? (v as number) : null)
  return {
    fn: text(r.fn),
    export: text(r.export),
    caller: text(r.caller),
    k: int(r.k),
    q: int(r.q),
    fuelLimit: int(r.fuel),
  }
}

function codeOf(err: unknown): string {
  return CovenantError.from(err).code
}

function triedOf(tried: Attempt[] | undefined): CallEvent['tried'] {
  return (tried ?? []).slice(0, 64).map((a) => ({
    peer: a.peer,
    outcome: a.outcome,
    ms: Math.round(a.ms),
    error: a.error?.code ?? null,
  }))
}

function receiptsOf(receipts: Receipt[]): CallEvent['receipts'] {
  return receipts.map((r) => receiptToJSON(r))
}

export function createCallFeed(options: CallFeedOptions = {}): CallFeed {
  const keep = options.keep ?? 500
  const maxSubscribers = options.maxSubscribers ?? 32
  const maxQueued = options.maxQueued ?? 1000
  const now = options.now ?? Date.now
  const events: CallEvent[] = []
  const subscribers = new Set<(event: CallEvent) => void>()
  let seq = 0

  function publish(event: Omit<CallEvent, 'seq' | 'at'>): void {
    const full: CallEvent = { seq: seq++, at: now(), ...event }
    events.push(full)
    if (events.length > keep) events.splice(0, events.length - keep)
    for (const deliver of subscribers) deliver(full)
  }

  return {
    executed({ request, from, reply, error, ms }) {
      const fields = requestFields(request)
      const result = reply !== undefined && 'receipt' in reply ? reply : undefined
      // A refusal is the executor's signed "I will not run it": its code is the outcome, no receipt.
      const refusal = reply !== undefined && 'refusal' in reply ? reply.refusal : undefined
      const receipt = result?.receipt
      let outcome = result?.output.error?.code ?? refusal?.code ?? 'ok'
      if (error !== undefined) outcome = codeOf(error)
      publish({
        role: 'executor',
        request: receipt?.request ?? refusal?.request ?? null,
        ...fields,
        fuel: receipt?.fuel ?? null,
        ms: Math.round(ms),
        outcome,
        from,
        outputHash: receipt?.outputHash ?? null,
        receipts: receipt === undefined ? [] : receiptsOf([receipt]),
        conflicts: [],
        tried: [],
      })
    },

    gatewayed({ request, result, error, ms }) {
      const fields = requestFields(request)
      const certificate = result?.certificate
      const details = (error instanceof CovenantError ? error.details : undefined) as
        | { tried?: Attempt[] }
        | undefined
      publish({
        role: 'gateway',
        request: certificate?.id ?? null,
        ...fields,
        fuel: certificate?.receipts[0]?.fuel ?? null,
        ms: Math.round(ms),
        outcome: error !== undefined ? codeOf(error) : (result?.output.error?.code ?? 'ok'),
        from: null,
        outputHash: certificate?.outputHash ?? null,
        receipts: certificate === undefined ? [] : receiptsOf(certificate.receipts),
        conflicts: (result?.conflicts ?? []).map(({ receipt }) => ({
          executor: receipt.executor,
          outputHash: receipt.outputHash,
        })),
        tried: triedOf(result?.tried ?? details?.tried),
      })
    },

    recent(n) {
      return n <= 0 ? [] : events.slice(-n)
    },

    subscribe({ backlog, signal }) {
      if (subscribers.size >= maxSubscribers)
        throw new CovenantError(
          'PEER_BUSY',
          `${maxSubscribers} readers already follow the calls of this node`,
        )
      const queue: CallEvent[] = backlog > 0 ? events.slice(-backlog) : []
      let wake: (() => void) | undefined
      let ended = false
      const end = (): void => {
        ended = true
        subscribers.delete(deliver)
        wake?.()
      }
      const deliver = (event: CallEvent): void => {
        // A reader this far behind is dropped rather than buffered without bound; it can reconnect.
        if (queue.length >= maxQueued) {
          end()
          return
        }
        queue.push(event)
        wake?.()
      }
      subscribers.add(deliver)
      if (signal.aborted) end()
      else signal.addEventListener('abort', end, { once: true })
      return {
        async *[Symbol.asyncIterator]() {
          try {
            while (true) {
              while (queue.length > 0) yield queue.shift()!
              if (ended) return
              await new Promise<void>((resolve) => {
                wake = resolve
              })
              wake = undefined
            }
          } finally {
            end()
          }
        },
      }
    },
  }
}
