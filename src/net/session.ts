/**
 * Sessions: many requests of one protocol over one long-lived stream, for the protocols on a
 * call's hot path (exec). A one-shot request (rpc.ts) pays, before its request is even sent, a new
 * Yamux stream, a multistream-select round trip, a peer-store write and logger scopes on both
 * sides, then about a dozen small encrypted writes; on a session a request is one frame each way.
 * Measured between two in-process nodes on loopback: 0.53 → 0.08 ms p50 a round trip, and
 * 0.78 → 0.11 ms of CPU (docs/protocol.md).
 *
 * A protocol `P` handled with `sessions: true` is also served on `P + SESSION_SUFFIX`. Frames are
 * length-prefixed DAG-CBOR, `{ id, msg }` from the caller and `{ id, result }` or `{ id, error }`
 * back, answered in any order. Every request on a session is held to the limits of a one-shot
 * request of `P`: its size (MESSAGE_TOO_LARGE, by id), a node-wide slot and one of its peer's share
 * (taken once its frame is read, so an idle session holds none; PEER_BUSY, by id) and the
 * handler's run timer. A session may idle at most `SESSION_IDLE_MS` on the serving side (its
 * caller closes it sooner), a connection carries at most `SESSION_STREAMS` of one protocol, and a
 * caller that does not take its replies stops being read from. A caller sends a request larger
 * than `SESSION_MAX_REQUEST_BYTES`, or one that may be answered with more than its session takes,
 * on a one-shot stream, and asks a peer that does not speak sessions with one-shot streams.
 */
import * as dagCbor from '@ipld/dag-cbor'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { z } from 'zod'
import { CovenantError } from '../errors/index.ts'
import { DEFAULT_MAX_MESSAGE_BYTES } from './protocols.ts'
import {
  abandoned,
  boundedLp,
  clearableTimeout,
  encodeReply,
  errorReply,
  type InboundCore,
  type Reply,
  readFailure,
} from './rpc.ts'

/** The session variant of protocol `P` is negotiated as `P + SESSION_SUFFIX`. */
export const SESSION_SUFFIX = '/session'
/** How long a session may stay idle on the serving side. */
export const SESSION_IDLE_MS = 120_000
/** How long a caller keeps a session with nothing to do before it closes it itself. */
export const SESSION_CALLER_IDLE_MS = 60_000
/** Session streams one connection may hold per protocol. */
export const SESSION_STREAMS = 4
/**
 * The largest request frame a caller sends on a session: what any protocol takes by default. A
 * larger request goes on a one-shot stream, where it gains as much.
 */
export const SESSION_MAX_REQUEST_BYTES = DEFAULT_MAX_MESSAGE_BYTES
/** Room a frame takes beside its message: its id and the envelope's keys. */
const FRAME_OVERHEAD = 32
/** Replies a session may have waiting to be written before it stops reading requests. */
const MAX_UNWRITTEN = 16
/** How long a peer that refused sessions is asked with one-shot streams only. */
const REFUSED_FOR_MS = 10 * 60_000

export function sessionProtocol(protocol: string): string {
  return protocol + SESSION_SUFFIX
}

const FrameIdSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)
const RequestFrameSchema = z.strictObject({ id: FrameIdSchema, msg: z.unknown() })
const ReplyFrameSchema = z.object({ id: FrameIdSchema }).loose()

/**
 * The serving side: a libp2p stream handler for `P + SESSION_SUFFIX` that runs every request with
 * `core`, the very slots and runner of `P`'s one-shot streams.
 */
export function sessionInbound(core: InboundCore): (stream: Stream, connection: Connection) => Promise<void> {
  const maxFrame = Math.max(core.maxBytes, SESSION_MAX_REQUEST_BYTES) + FRAME_OVERHEAD
  return async (stream, connection) => {
    const from = connection.remotePeer.toString()
    const lp = boundedLp(stream, maxFrame, 64 * 1024)
    let unwritten = 0
    let wake: (() => void) | undefined
    let broken = false
    const running = new Set<Promise<void>>()
    const send = (id: number, reply: Reply): void => {
      if (broken) return
      unwritten++
      // A caller that does not take its replies gets no more time than a one-shot caller has.
      const timeout = clearableTimeout(core.readTimeoutMs)
      lp.write(encodeReply({ id, ...reply }), { signal: timeout.signal })
        .catch((err: unknown) => {
          broken = true
          stream.abort(err instanceof Error ? err : new Error(String(err)))
        })
        .finally(() => {
          timeout.clear()
          unwritten--
          wake?.()
        })
    }
    const refuse = (id: number, err: CovenantError): void => {
      core.onError?.(err, from)
      send(id, errorReply(err))
    }
    // What cannot be read as a frame has no id to answer by: it gets the protocol's plain error
    // reply, as on a one-shot stream, and the session ends.
    const refuseUnread = (err: CovenantError): void => {
      core.onError?.(err, from)
      const written = lp
        .write(encodeReply(errorReply(err)), { signal: AbortSignal.timeout(core.readTimeoutMs) })
        .catch(() => {})
      running.add(written)
    }
    for (;;) {
      while (unwritten >= MAX_UNWRITTEN && !broken) await new Promise<void>((r) => (wake = r))
      if (broken) return
      let raw: Uint8Array
      const idle = clearableTimeout(SESSION_IDLE_MS)
      try {
        raw = (await lp.read({ signal: idle.signal })).subarray()
      } catch (err) {
        // The caller closed its side, idled too long, or sent what cannot be read (then answered
        // without an id, see refuseUnread): the session ends.
        const e = readFailure(err, maxFrame)
        if (e.code !== 'PEER_TIMEOUT' && stream.readStatus !== 'closed' && !broken) refuseUnread(e)
        break
      } finally {
        idle.clear()
      }
      let frame: z.infer<typeof RequestFrameSchema>
      try {
        frame = RequestFrameSchema.parse(dagCbor.decode(raw))
      } catch {
        refuseUnread(new CovenantError('PROTOCOL_ERROR', 'a session frame is not { id, msg }'))
        break
      }
      const { id } = frame
      if (raw.byteLength > core.maxBytes + FRAME_OVERHEAD) {
        refuse(
          id,
          new CovenantError(
            'MESSAGE_TOO_LARGE',
            `messages on this protocol are at most ${core.maxBytes} bytes`,
          ),
        )
        continue
      }
      const busy = core.take(from)
      if (busy !== undefined) {
        refuse(id, busy)
        continue
      }
      const work = core.serveDecoded(frame.msg, from).then((reply) => send(id, reply))
      running.add(work)
      void work.finally(() => running.delete(work))
    }
    // Requests already read are answered before the session closes.
    await Promise.allSettled(running)
    try {
      await stream.close({ signal: AbortSignal.timeout(core.readTimeoutMs) })
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}

interface Pending {
  resolve(envelope: unknown): void
  reject(err: CovenantError): void
  maxReplyBytes: number
}

/** One open session to a peer, on the caller's side. */
interface Session {
  stream: Stream
  lp: ReturnType<typeof boundedLp>
  pending: Map<number, Pending>
  nextId: number
  /** the largest reply a frame on it may carry */
  maxReplyBytes: number
  idleTimer: NodeJS.Timeout | undefined
  closed: boolean
}

/** One request's bounds, as `Net.request` has them. */
export interface SessionRequestOptions {
  timeoutMs: number
  /** the caller's own signal, if any */
  signal?: AbortSignal
  maxReplyBytes: number
}

/**
 * The calling side: at most one session per peer and protocol, opened on first use and shared by
 * every request to that peer; closed when it has had nothing to do for `SESSION_CALLER_IDLE_MS`,
 * or when its stream breaks (the requests waiting on it then fail with PEER_UNREACHABLE, as they
 * would on a broken one-shot stream).
 */
export class SessionPool {
  readonly #libp2p: () => Libp2p
  readonly #live = new Map<string, Session>()
  readonly #dialing = new Map<string, Promise<Session>>()
  readonly #refused = new Map<string, number>()

  constructor(libp2p: () => Libp2p) {
    this.#libp2p = libp2p
  }

  /**
   * Sends `msg` to `peerId` on a session of `protocol` and resolves with the reply envelope as
   * decoded; with `undefined` when the request belongs on a one-shot stream instead (too large,
   * or the peer does not speak sessions). Rejects with the typed errors of a one-shot request.
   */
  async request(
    peerId: string,
    protocol: string,
    msg: unknown,
    options: SessionRequestOptions,
  ): Promise<{ envelope: unknown } | undefined> {
    const key = `${peerId}\0${protocol}`
    const refusedUntil = this.#refused.get(key)
    if (refusedUntil !== undefined) {
      if (refusedUntil > Date.now()) return undefined
      this.#refused.delete(key)
    }
    const started = Date.now()
    let s: Session | undefined
    try {
      s = await this.#open(key, peerId, protocol, options)
    } catch (err) {
      if (options.signal?.aborted) throw abandoned(options.signal)
      if (Date.now() - started >= options.timeoutMs)
        throw new CovenantError('PEER_TIMEOUT', `${peerId} did not answer within ${options.timeoutMs} ms`)
      throw new CovenantError(
        'PEER_UNREACHABLE',
        `could not open ${sessionProtocol(protocol)} to ${peerId}: ${(err as Error).message}`,
        { cause: err },
      )
    }
    if (s === undefined || options.maxReplyBytes > s.maxReplyBytes) return undefined
    const id = s.nextId++
    const frame = dagCbor.encode({ id, msg })
    if (frame.byteLength > SESSION_MAX_REQUEST_BYTES) return undefined
    const session = s
    const remaining = Math.max(0, options.timeoutMs - (Date.now() - started))
    return new Promise<{ envelope: unknown }>((resolve, reject) => {
      const settle = (err: CovenantError | undefined, envelope?: unknown): void => {
        if (!session.pending.delete(id)) return
        clearTimeout(timer)
        options.signal?.removeEventListener('abort', onAbort)
        this.#touch(key, session)
        if (err === undefined) resolve({ envelope })
        else reject(err)
      }
      // A reply that comes after its caller gave up is dropped when it arrives.
      const timer = setTimeout(
        () =>
          settle(
            new CovenantError('PEER_TIMEOUT', `${peerId} did not answer within ${options.timeoutMs} ms`),
          ),
        remaining,
      )
      const onAbort = (): void => settle(abandoned(options.signal!))
      options.signal?.addEventListener('abort', onAbort, { once: true })
      session.pending.set(id, {
        resolve: (envelope) => settle(undefined, envelope),
        reject: (err) => settle(err),
        maxReplyBytes: options.maxReplyBytes,
      })
      this.#touch(key, session)
      if (options.signal?.aborted) return onAbort()
      session.lp.write(frame).catch((err: unknown) => {
        this.#close(
          key,
          session,
          new CovenantError('PEER_UNREACHABLE', `the session to ${peerId} broke`, { cause: err }),
        )
      })
    })
  }

  /** Closes every session (the node is stopping). */
  close(): void {
    for (const [key, s] of this.#live)
      this.#close(key, s, new CovenantError('NOT_STARTED', 'the network stopped'))
  }

  /** The live session for `key`, or a new one; `undefined` if the peer does not speak sessions. */
  async #open(
    key: string,
    peerId: string,
    protocol: string,
    options: SessionRequestOptions,
  ): Promise<Session | undefined> {
    const live = this.#live.get(key)
    if (live !== undefined && !live.closed) return live
    let dialing = this.#dialing.get(key)
    if (dialing === undefined) {
      // Not the caller's own signal: a session dialled for one request serves the others too.
      dialing = this.#dial(key, peerId, protocol, options).finally(() => this.#dialing.delete(key))
      this.#dialing.set(key, dialing)
    }
    try {
      return await dialing
    } catch (err) {
      if ((err as Error).name !== 'UnsupportedProtocolError') throw err
      this.#refused.set(key, Date.now() + REFUSED_FOR_MS)
      return undefined
    }
  }

  async #dial(
    key: string,
    peerId: string,
    protocol: string,
    options: SessionRequestOptions,
  ): Promise<Session> {
    const stream = await this.#libp2p().dialProtocol(peerIdFromString(peerId), sessionProtocol(protocol), {
      signal: AbortSignal.timeout(options.timeoutMs),
    })
    const maxFrame = options.maxReplyBytes + FRAME_OVERHEAD
    const session: Session = {
      stream,
      lp: boundedLp(stream, maxFrame, 16),
      pending: new Map(),
      nextId: 0,
      maxReplyBytes: options.maxReplyBytes,
      idleTimer: undefined,
      closed: false,
    }
    this.#live.set(key, session)
    this.#touch(key, session)
    void this.#read(key, peerId, session)
    return session
  }

  /** Reads replies until the stream ends, handing each to the request it answers. */
  async #read(key: string, peerId: string, s: Session): Promise<void> {
    let why: CovenantError
    for (;;) {
      let raw: Uint8Array
      try {
        raw = (await s.lp.read()).subarray()
      } catch (err) {
        const name = (err as Error).name
        why =
          name === 'InvalidDataLengthError' || name === 'StreamBufferError'
            ? new CovenantError(
                'MESSAGE_TOO_LARGE',
                `a reply from ${peerId} exceeds ${s.maxReplyBytes} bytes`,
              )
            : new CovenantError('PEER_UNREACHABLE', `the session to ${peerId} closed`, { cause: err })
        break
      }
      let frame: z.infer<typeof ReplyFrameSchema>
      try {
        frame = ReplyFrameSchema.parse(dagCbor.decode(raw))
      } catch {
        why = new CovenantError('PROTOCOL_ERROR', `${peerId} sent a session frame without its id`)
        break
      }
      const pending = s.pending.get(frame.id)
      if (pending === undefined) continue
      if (raw.byteLength > pending.maxReplyBytes + FRAME_OVERHEAD) {
        pending.reject(
          new CovenantError(
            'MESSAGE_TOO_LARGE',
            `reply from ${peerId} exceeds ${pending.maxReplyBytes} bytes`,
          ),
        )
        continue
      }
      const { id: _, ...envelope } = frame
      pending.resolve(envelope)
    }
    this.#close(key, s, why)
  }

  /** Restarts the session's idle clock. */
  #touch(key: string, s: Session): void {
    clearTimeout(s.idleTimer)
    s.idleTimer = setTimeout(() => {
      if (s.pending.size === 0) this.#close(key, s, new CovenantError('PEER_TIMEOUT', 'the session was idle'))
      else this.#touch(key, s)
    }, SESSION_CALLER_IDLE_MS)
    s.idleTimer.unref()
  }

  #close(key: string, s: Session, why: CovenantError): void {
    if (s.closed) return
    s.closed = true
    clearTimeout(s.idleTimer)
    if (this.#live.get(key) === s) this.#live.delete(key)
    for (const p of [...s.pending.values()]) p.reject(why)
    s.pending.clear()
    s.stream.close().catch(() => s.stream.abort(new Error(why.message)))
  }
}
