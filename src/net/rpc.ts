/**
 * The request/reply layer over libp2p streams: one length-prefixed DAG-CBOR request, one reply,
 * then the stream closes. Inbound requests are size-bounded before they are buffered, decoded,
 * validated by the handler's zod schema, and answered with `{ result }` or a typed `{ error }`.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { lpStream } from '@libp2p/utils'
import type { z } from 'zod'
import { CovenantError, parseOrThrow } from '../errors/index.ts'
import {
  DEFAULT_MAX_CONCURRENT,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_PER_PEER,
  DEFAULT_MAX_REPLY_BYTES,
  DEFAULT_READ_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_RUN_TIMEOUT_MS,
  replyEnvelopeSchema,
} from './protocols.ts'

/** How a node answers one protocol. */
export interface RpcHandlerInit<S extends z.ZodType, R> {
  /** every inbound request is parsed by this schema before the handler sees it */
  schema: S
  /** largest request accepted, in bytes (checked on the length prefix, before buffering) @default 65536 */
  maxBytes?: number
  /** concurrent inbound streams per connection (libp2p resets the ones beyond) @default 16 */
  maxInboundStreams?: number
  /** concurrent inbound requests for this protocol across all peers @default 64 */
  maxConcurrent?: number
  /** concurrent inbound requests for this protocol from one remote peer @default 8 */
  maxPerPeer?: number
  /** time the peer has to deliver its whole request once the stream is open @default 5000 */
  readTimeoutMs?: number
  /** time the handler has to answer once the request is read @default 10000 */
  runTimeoutMs?: number
  /**
   * also serve the protocol on sessions (session.ts): many requests over one long-lived stream,
   * each held to these same limits @default false
   */
  sessions?: boolean
  /** `signal` aborts when the run time is up; the request's slot is held until the handler settles */
  handler: (msg: z.infer<S>, fromPeerId: string, signal: AbortSignal) => Promise<R>
}

/** What one protocol's inbound side holds right now. */
export interface InboundLoad {
  /** requests being read or run */
  active: number
  /** remote peers with at least one of them */
  peers: number
  /** the most any one peer holds */
  maxFromOnePeer: number
}

export interface RequestOptions<T = unknown> {
  /** dial + reply deadline @default 10000 */
  timeoutMs?: number
  signal?: AbortSignal
  /** largest reply accepted @default 65536 */
  maxReplyBytes?: number
  /** validates the reply's `result`; without it the result is returned as decoded */
  schema?: z.ZodType<T>
  /**
   * send it on the peer's session of this protocol (session.ts) when it has one and the request
   * fits a frame; else on a one-shot stream @default false
   */
  session?: boolean
}

/** What a handler answers, as it travels: exactly one of `result` or `error`. */
export type Reply = { result: unknown } | { error: { code: string; message: string } }

/**
 * A length-prefixed view of `stream` that never buffers without bound: a prefix above `maxBytes`
 * is refused before its body is read, and at most `slack` bytes beyond it are held (room for one
 * chunk in flight, so an oversized message can still get a typed reply).
 */
export function boundedLp(stream: Stream, maxBytes: number, slack: number) {
  return lpStream(stream, {
    maxDataLength: maxBytes,
    maxBufferSize: maxBytes + slack,
    lengthDecoder: lengthDecoder(maxBytes),
  })
}

/**
 * The length prefix of a message of at most `maxBytes`, read as `lpStream` offers it one byte at a
 * time: a prefix longer than such a length needs is refused as soon as it is, by its byte count.
 * `lpStream`'s own decoder only checks that once the prefix ends, so a peer sending megabytes of
 * continuation bytes (0x80–0xff) had every one of them decoded in turn, on microtasks that never
 * let a timer run: 1.6 MB held the event loop for over ten seconds.
 */
export function lengthDecoder(
  maxBytes: number,
): (prefix: { byteLength: number; get(i: number): number }) => number {
  let maxLength = 1
  while (2 ** (7 * maxLength) <= maxBytes) maxLength++
  return (prefix) => {
    let value = 0
    for (let i = 0; i < prefix.byteLength; i++) {
      if (i >= maxLength) {
        const err = new Error(`length prefix longer than ${maxLength} bytes`)
        err.name = 'InvalidDataLengthLengthError'
        throw err
      }
      const byte = prefix.get(i)
      value += (byte & 0x7f) * 2 ** (7 * i)
      if (byte < 0x80) return value
    }
    // lpStream reads another byte on a RangeError: the prefix has not ended yet. One made once:
    // every frame above 127 bytes gets here, and a new one would capture its stack each time.
    throw PREFIX_NOT_ENDED
  }
}

const PREFIX_NOT_ENDED = new RangeError('the length prefix has not ended')

/** Maps a stream-level failure on an inbound read to the typed error the peer receives. */
export function readFailure(err: unknown, maxBytes: number): CovenantError {
  const name = (err as Error | undefined)?.name ?? ''
  if (name === 'InvalidDataLengthError' || name === 'InvalidDataLengthLengthError')
    return new CovenantError('MESSAGE_TOO_LARGE', `messages on this protocol are at most ${maxBytes} bytes`)
  if (name === 'InvalidMessageLengthError')
    return new CovenantError('PROTOCOL_ERROR', 'invalid length prefix')
  if (name === 'AbortError' || name === 'TimeoutError')
    return new CovenantError('PEER_TIMEOUT', 'request not received in time')
  return new CovenantError('PROTOCOL_ERROR', 'could not read the request')
}

/**
 * A signal that aborts after `ms`, with the TimeoutError `AbortSignal.timeout` gives, unless
 * `clear()` comes first. `AbortSignal.timeout` cannot be cancelled: the signals of each request
 * served (its run, its reply's write, the next frame's read) fired seconds after the request was
 * answered, each building a DOMException and its stack trace: a few per cent of a node's CPU on a
 * commit's path, spent at random moments of later calls (docs/apps.md, performance).
 */
export function clearableTimeout(ms: number): { signal: AbortSignal; clear(): void } {
  const controller = new AbortController()
  const timer = setTimeout(
    () => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
    ms,
  )
  timer.unref()
  return { signal: controller.signal, clear: () => clearTimeout(timer) }
}

/** Settles with `work`, or rejects with `onAbort()` as soon as `signal` aborts. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal, onAbort: () => CovenantError): Promise<T> {
  if (signal.aborted) return Promise.reject(onAbort())
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => reject(onAbort())
    signal.addEventListener('abort', abort, { once: true })
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', abort))
  })
}

/**
 * What one protocol's inbound side shares between its one-shot streams and its sessions
 * (session.ts): the slots (node-wide, and each peer's share) and the way one request is decoded,
 * checked and run.
 */
export interface InboundCore {
  maxBytes: number
  maxPerPeer: number
  readTimeoutMs: number
  onError?: (err: CovenantError, from: string) => void
  /** takes a slot for one request from `from`, or says why not (PEER_BUSY) */
  take(from: string): CovenantError | undefined
  /** gives back a slot taken for a request that was never read */
  release(from: string): void
  /**
   * Decodes, checks and runs one request whose slot is taken; the slot is given back when the
   * handler is really done (even after the peer was told it took too long). Resolves with the
   * reply envelope, never rejects.
   */
  serve(raw: Uint8Array, from: string): Promise<Reply>
  /** {@link serve} for a message already decoded (a session frame's) */
  serveDecoded(decoded: unknown, from: string): Promise<Reply>
  load(): InboundLoad
}

/** The reply envelope of a failure, as the peer receives it. */
export function errorReply(err: unknown): { error: { code: string; message: string } } {
  const e = CovenantError.from(err)
  const message = e.code === 'INTERNAL' ? 'internal error' : e.message.slice(0, 1024)
  return { error: { code: e.code, message } }
}

/** The limits and the request runner of one protocol's inbound side. */
export function inboundCore<S extends z.ZodType, R>(
  init: RpcHandlerInit<S, R>,
  onError?: (err: CovenantError, from: string) => void,
): InboundCore {
  const maxBytes = init.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES
  const maxConcurrent = init.maxConcurrent ?? DEFAULT_MAX_CONCURRENT
  const maxPerPeer = init.maxPerPeer ?? DEFAULT_MAX_PER_PEER
  const readTimeoutMs = init.readTimeoutMs ?? DEFAULT_READ_TIMEOUT_MS
  const runTimeoutMs = init.runTimeoutMs ?? DEFAULT_RUN_TIMEOUT_MS
  let active = 0
  const byPeer = new Map<string, number>()

  const release = (from: string): void => {
    active--
    const mine = (byPeer.get(from) ?? 1) - 1
    if (mine <= 0) byPeer.delete(from)
    else byPeer.set(from, mine)
  }

  const run = async (decoded: unknown, from: string): Promise<Reply> => {
    let work: Promise<R> | undefined
    let timer: ReturnType<typeof clearableTimeout> | undefined
    try {
      const msg = parseOrThrow(init.schema, decoded, 'PROTOCOL_ERROR', 'invalid request')
      timer = clearableTimeout(runTimeoutMs)
      work = init.handler(msg, from, timer.signal)
      const done = (): void => {
        timer?.clear()
        release(from)
      }
      work.then(done, done)
      const result = await untilAborted(
        work,
        timer.signal,
        () => new CovenantError('PEER_TIMEOUT', `the request was not answered within ${runTimeoutMs} ms`),
      )
      return { result }
    } finally {
      // The slot stays taken until the handler is really done, even after the peer was told it
      // took too long: the slot bounds the work, not the wait.
      if (work === undefined) {
        timer?.clear()
        release(from)
      }
    }
  }

  const serveDecoded = async (decoded: unknown, from: string): Promise<Reply> => {
    try {
      return await run(decoded, from)
    } catch (err) {
      const e = CovenantError.from(err)
      onError?.(e, from)
      return errorReply(e)
    }
  }

  return {
    maxBytes,
    maxPerPeer,
    readTimeoutMs,
    onError,
    take(from) {
      const mine = byPeer.get(from) ?? 0
      if (active >= maxConcurrent)
        return new CovenantError('PEER_BUSY', 'too many concurrent requests on this protocol')
      if (mine >= maxPerPeer)
        return new CovenantError(
          'PEER_BUSY',
          `at most ${maxPerPeer} concurrent requests per peer on this protocol`,
        )
      active++
      byPeer.set(from, mine + 1)
      return undefined
    },
    release,
    async serve(raw, from) {
      let decoded: unknown
      try {
        decoded = dagCbor.decode(raw)
      } catch {
        release(from)
        const e = new CovenantError('PROTOCOL_ERROR', 'the request is not DAG-CBOR')
        onError?.(e, from)
        return errorReply(e)
      }
      return serveDecoded(decoded, from)
    },
    serveDecoded,
    load: () => ({ active, peers: byPeer.size, maxFromOnePeer: Math.max(0, ...byPeer.values()) }),
  }
}

/** Encodes a reply envelope; one that cannot be encoded becomes an INTERNAL error reply. */
export function encodeReply(reply: unknown): Uint8Array {
  try {
    return dagCbor.encode(reply)
  } catch (err) {
    return dagCbor.encode(errorReply(new CovenantError('INTERNAL', 'reply not encodable', { cause: err })))
  }
}

/**
 * The one-shot inbound side of one protocol: a libp2p stream handler serving one request per
 * stream. A request takes a slot from the node-wide pool and one from its peer's share before
 * anything is read, so a few peers holding idle streams cannot take every slot; the peer then has
 * `readTimeoutMs` to deliver the request, and the handler has `runTimeoutMs` to answer it, each on
 * its own timer.
 */
export function rpcInbound(core: InboundCore): (stream: Stream, connection: Connection) => Promise<void> {
  const { maxBytes, readTimeoutMs } = core
  return async (stream, connection) => {
    const from = connection.remotePeer.toString()
    // The length prefix is checked before the body is read, and the buffer is capped a little
    // above the limit (room for one chunk in flight, so an oversized request still gets a typed
    // reply); a peer pushing more than that has its stream reset. Never unbounded.
    const lp = boundedLp(stream, maxBytes, 64 * 1024)
    let reply: Reply | undefined
    const refused = core.take(from)
    if (refused !== undefined) {
      core.onError?.(refused, from)
      reply = errorReply(refused)
    } else {
      let raw: Uint8Array | undefined
      try {
        raw = (await lp.read({ signal: AbortSignal.timeout(readTimeoutMs) })).subarray()
      } catch (err) {
        core.release(from)
        const e = readFailure(err, maxBytes)
        core.onError?.(e, from)
        reply = errorReply(e)
      }
      if (raw !== undefined) reply = await core.serve(raw, from)
    }
    // A peer that does not take its reply gets no more time than it had to send the request.
    const signal = AbortSignal.timeout(readTimeoutMs)
    try {
      await lp.write(encodeReply(reply!), { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}

/** The error a request gives up with when its caller's signal aborts it. */
export function abandoned(signal: AbortSignal): CovenantError {
  return signal.reason instanceof CovenantError
    ? signal.reason
    : new CovenantError('PEER_TIMEOUT', 'the caller abandoned the request', { cause: signal.reason })
}

/**
 * Sends one request and awaits its reply. Every failure is a CovenantError: the peer's error reply
 * as it sent it (an unknown code as PROTOCOL_ERROR, its INTERNAL as PEER_UNREACHABLE), PEER_TIMEOUT when `timeoutMs` passes or the
 * caller's signal aborts, MESSAGE_TOO_LARGE for a reply over `maxReplyBytes`, PROTOCOL_ERROR for a
 * reply that is not DAG-CBOR, not an envelope or not what `schema` expects, and PEER_UNREACHABLE
 * when the stream could not be opened or broke.
 */
export async function rpcRequest<T = unknown>(
  libp2p: Libp2p,
  peerId: string,
  protocol: string,
  msg: unknown,
  options: RequestOptions<T> = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS
  const maxReplyBytes = options.maxReplyBytes ?? DEFAULT_MAX_REPLY_BYTES
  const timeout = AbortSignal.timeout(timeoutMs)
  const signal = options.signal === undefined ? timeout : AbortSignal.any([timeout, options.signal])
  let peer: ReturnType<typeof peerIdFromString>
  try {
    peer = peerIdFromString(peerId)
  } catch {
    throw new CovenantError('INVALID_INPUT', `not a peer id: ${peerId}`)
  }
  let stream: Stream
  try {
    stream = await libp2p.dialProtocol(peer, protocol, { signal })
  } catch (err) {
    if (options.signal?.aborted) throw abandoned(options.signal)
    if (timeout.aborted)
      throw new CovenantError('PEER_TIMEOUT', `${peerId} did not answer within ${timeoutMs} ms`)
    throw new CovenantError(
      'PEER_UNREACHABLE',
      `could not open ${protocol} to ${peerId}: ${(err as Error).message}`,
      {
        cause: err,
      },
    )
  }
  let raw: Uint8Array
  try {
    const lp = boundedLp(stream, maxReplyBytes, 16)
    await lp.write(dagCbor.encode(msg), { signal })
    raw = (await lp.read({ signal })).subarray()
    await stream.close({ signal }).catch(() => {})
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    if (options.signal?.aborted) throw abandoned(options.signal)
    if (timeout.aborted)
      throw new CovenantError('PEER_TIMEOUT', `${peerId} did not answer within ${timeoutMs} ms`)
    if (err instanceof CovenantError) throw err
    const name = (err as Error).name
    // The length prefix is checked when it arrives alone; a reply that comes in one piece larger
    // than the read buffer overflows it first.
    if (
      name === 'InvalidDataLengthError' ||
      name === 'InvalidDataLengthLengthError' ||
      name === 'StreamBufferError'
    )
      throw new CovenantError('MESSAGE_TOO_LARGE', `reply from ${peerId} exceeds ${maxReplyBytes} bytes`)
    throw new CovenantError(
      'PEER_UNREACHABLE',
      `${protocol} to ${peerId} failed: ${(err as Error).message}`,
      {
        cause: err,
      },
    )
  }
  let envelope: unknown
  try {
    envelope = dagCbor.decode(raw)
  } catch {
    throw new CovenantError('PROTOCOL_ERROR', `reply from ${peerId} is not DAG-CBOR`)
  }
  return replyResult(envelope, peerId, protocol, options.schema)
}

/**
 * The result a decoded reply envelope carries, checked with `schema` when given; the peer's error
 * reply thrown as it sent it (an unknown code as PROTOCOL_ERROR, its INTERNAL as PEER_UNREACHABLE).
 */
export function replyResult<T>(
  envelope: unknown,
  peerId: string,
  protocol: string,
  schema?: z.ZodType<T>,
): T {
  const parsed = replyEnvelopeSchema.safeParse(envelope)
  if (!parsed.success) throw new CovenantError('PROTOCOL_ERROR', `malformed reply from ${peerId}`)
  // A peer's details are not passed on: nothing here asks for them, and they are its words.
  if ('error' in parsed.data) {
    // The peer's own failure is not this node's: relayed as INTERNAL, a node would answer its
    // callers "a bug in Covenant, see the node log" for another node's bug (or its lie).
    if (parsed.data.error.code === 'INTERNAL')
      throw new CovenantError(
        'PEER_UNREACHABLE',
        `${peerId} failed to answer ${protocol} (an internal error there)`,
      )
    throw CovenantError.fromJSON({ code: parsed.data.error.code, message: parsed.data.error.message })
  }
  if (schema === undefined) return parsed.data.result as T
  const result = schema.safeParse(parsed.data.result)
  if (!result.success) throw new CovenantError('PROTOCOL_ERROR', `unexpected reply from ${peerId}`)
  return result.data
}
