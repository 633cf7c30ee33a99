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
  DEFAULT_INBOUND_TIMEOUT_MS,
  DEFAULT_MAX_CONCURRENT,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_REPLY_BYTES,
  DEFAULT_REQUEST_TIMEOUT_MS,
  replyEnvelopeSchema,
} from './protocols.ts'

/** How a node answers one protocol. */
export interface RpcHandlerInit<S extends z.ZodType, R> {
  /** every inbound request is parsed by this schema before the handler sees it */
  schema: S
  /** largest request accepted, in bytes (checked on the length prefix, before buffering) @default 65536 */
  maxBytes?: number
  /** concurrent inbound streams per connection @default 16 */
  maxInboundStreams?: number
  /** concurrent inbound requests for this protocol across all peers @default 64 */
  maxConcurrent?: number
  /** time for the peer to send its request and for the handler to answer @default 10000 */
  timeoutMs?: number
  handler: (msg: z.infer<S>, fromPeerId: string) => Promise<R>
}

export interface RequestOptions<T = unknown> {
  /** dial + reply deadline @default 10000 */
  timeoutMs?: number
  signal?: AbortSignal
  /** largest reply accepted @default 65536 */
  maxReplyBytes?: number
  /** validates the reply's `result`; without it the result is returned as decoded */
  schema?: z.ZodType<T>
}

function encodeReply(value: { result: unknown } | { error: { code: string; message: string } }): Uint8Array {
  return dagCbor.encode(value)
}

function errorReply(err: unknown): { error: { code: string; message: string } } {
  const e = CovenantError.from(err)
  const message = e.code === 'INTERNAL' ? 'internal error' : e.message.slice(0, 1024)
  return { error: { code: e.code, message } }
}

/** Maps a stream-level failure on an inbound read to the typed error the peer receives. */
function readFailure(err: unknown, maxBytes: number): CovenantError {
  const name = (err as Error | undefined)?.name ?? ''
  if (name === 'InvalidDataLengthError' || name === 'InvalidDataLengthLengthError')
    return new CovenantError('MESSAGE_TOO_LARGE', `messages on this protocol are at most ${maxBytes} bytes`)
  if (name === 'InvalidMessageLengthError')
    return new CovenantError('PROTOCOL_ERROR', 'invalid length prefix')
  if (name === 'AbortError' || name === 'TimeoutError')
    return new CovenantError('PEER_TIMEOUT', 'request not received in time')
  return new CovenantError('PROTOCOL_ERROR', 'could not read the request')
}

/** Builds the libp2p stream handler for one protocol. */
export function rpcStreamHandler<S extends z.ZodType, R>(
  init: RpcHandlerInit<S, R>,
  onError?: (err: CovenantError, from: string) => void,
): (stream: Stream, connection: Connection) => Promise<void> {
  const maxBytes = init.maxBytes ?? DEFAULT_MAX_MESSAGE_BYTES
  const maxConcurrent = init.maxConcurrent ?? DEFAULT_MAX_CONCURRENT
  const timeoutMs = init.timeoutMs ?? DEFAULT_INBOUND_TIMEOUT_MS
  let active = 0
  return async (stream, connection) => {
    const from = connection.remotePeer.toString()
    const signal = AbortSignal.timeout(timeoutMs)
    // The length prefix is checked before the body is read, and the buffer is capped a little
    // above the limit (room for one chunk in flight, so an oversized request still gets a typed
    // reply); a peer pushing more than that has its stream reset. Never unbounded.
    const lp = lpStream(stream, { maxDataLength: maxBytes, maxBufferSize: maxBytes + 64 * 1024 })
    let reply: ReturnType<typeof errorReply> | { result: unknown }
    if (active >= maxConcurrent) {
      const busy = new CovenantError('PEER_BUSY', 'too many concurrent requests on this protocol')
      onError?.(busy, from)
      reply = errorReply(busy)
    } else {
      active++
      try {
        let raw: Uint8Array
        try {
          raw = (await lp.read({ signal })).subarray()
        } catch (err) {
          throw readFailure(err, maxBytes)
        }
        let decoded: unknown
        try {
          decoded = dagCbor.decode(raw)
        } catch {
          throw new CovenantError('PROTOCOL_ERROR', 'the request is not DAG-CBOR')
        }
        const msg = parseOrThrow(init.schema, decoded, 'PROTOCOL_ERROR', 'invalid request')
        reply = { result: await init.handler(msg, from) }
      } catch (err) {
        const e = CovenantError.from(err)
        onError?.(e, from)
        reply = errorReply(e)
      } finally {
        active--
      }
    }
    try {
      let bytes: Uint8Array
      try {
        bytes = encodeReply(reply)
      } catch (err) {
        bytes = encodeReply(errorReply(new CovenantError('INTERNAL', 'reply not encodable', { cause: err })))
      }
      await lp.write(bytes, { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}

/** The error a request gives up with when its caller's signal aborts it. */
function abandoned(signal: AbortSignal): CovenantError {
  return signal.reason instanceof CovenantError
    ? signal.reason
    : new CovenantError('PEER_TIMEOUT', 'the caller abandoned the request', { cause: signal.reason })
}

/**
 * Sends one request and awaits its reply. Every failure is a CovenantError: the peer's error reply
 * as it sent it (an unknown code as PROTOCOL_ERROR), PEER_TIMEOUT when `timeoutMs` passes or the
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
    const lp = lpStream(stream, { maxDataLength: maxReplyBytes, maxBufferSize: maxReplyBytes + 16 })
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
  const parsed = replyEnvelopeSchema.safeParse(envelope)
  if (!parsed.success) throw new CovenantError('PROTOCOL_ERROR', `malformed reply from ${peerId}`)
  // A peer's details are not passed on: nothing here asks for them, and they are its words.
  if ('error' in parsed.data)
    throw CovenantError.fromJSON({ code: parsed.data.error.code, message: parsed.data.error.message })
  if (options.schema === undefined) return parsed.data.result as T
  const result = options.schema.safeParse(parsed.data.result)
  if (!result.success) throw new CovenantError('PROTOCOL_ERROR', `unexpected reply from ${peerId}`)
  return result.data
}
