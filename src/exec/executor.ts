/**
 * The executor: the server side of the exec protocol. It checks a request against its own
 * covenant and its own view of the network, fetches the function by CID (hash-checked, cached),
 * runs it in the sandbox and signs a receipt for the output — or signs its refusal. It answers a
 * request id it has seen before with the reply it gave, so a replayed request never runs twice.
 */

import { type CID, decodeManifest, type Manifest, parseCid, verifyBlock } from '../content/index.ts'
import type { SignedCovenant } from '../covenant/index.ts'
import { mayExecute } from '../covenant/index.ts'
import type { JsonValue } from '../encoding/index.ts'
import { CovenantError, isErrorCode } from '../errors/index.ts'
import { keyId, type PrivateKey } from '../keys/index.ts'
import {
  DEFAULT_LIMITS,
  SANDBOX_BUILD,
  type Sandbox,
  type SandboxCall,
  type SandboxResult,
  type StoreReader,
} from '../sandbox/index.ts'
import { DEFAULT_TRUST } from './certificate.ts'
import { LruCache } from './code-cache.ts'
import { rankExecutors } from './executor-selection.ts'
import { Sha256HexSchema } from './fields.ts'
import { type Output, outputEffects, outputHash } from './output.ts'
import { type Receipt, signReceipt } from './receipt.ts'
import { STANDING_REFUSALS, signRefusal } from './refusal.ts'
import { checkRequest, checkRequestTime, MAX_CLOCK_SKEW_MS, type SignedRequest } from './request.ts'
import { isStored, type OutputBlock, storedOutput } from './stored-output.ts'
import type { View } from './view.ts'
import type { ExecReply, ExecResult } from './wire.ts'

/**
 * Misbehaviours an executor can be told to show, for tests and devnet demos only. `late-wrong-result`
 * signs the forged value like `wrong-result` and holds its reply until a second before the
 * request's deadline: after the quorum, and after the caller stopped waiting for it, as a liar
 * that hopes to go unnoticed would.
 */
export const FAULT_KINDS = [
  'wrong-result',
  'late-wrong-result',
  'bad-signature',
  'crash',
  'slow',
  'silent',
] as const
export type FaultKind = (typeof FAULT_KINDS)[number]

/** The value every `wrong-result` executor returns, so colluding faulty executors agree. */
export const FORGED_VALUE = { forged: true } as const

const MiB = 1024 * 1024

/**
 * Sandbox outcomes that say nothing about the function, only about this machine: they get no
 * receipt (a receipt would be false conflict evidence), the caller tries another executor.
 */
const MACHINE_FAILURES = new Set(['SANDBOX_CRASHED', 'INTERNAL', 'NOT_STARTED'])

/**
 * Reads one key of a namespace at the namespace version `at` (fixed by the request), from this
 * node's copy or the namespace's holders. It throws when it cannot answer (no holder reachable,
 * the version not reached): that depends on this machine, so the call ends without a receipt.
 */
export type ReadAt = (
  ns: string,
  key: string,
  at: number,
  options: { signal: AbortSignal },
) => Promise<{ value: JsonValue | null; version: number }>

export interface ExecutorInit {
  key: PrivateKey
  sandbox: Pick<Sandbox, 'run'>
  /** the sandbox build `sandbox` runs, signed into every receipt. @default SANDBOX_BUILD */
  build?: string
  /** fetches a block's bytes by CID string; the executor checks their hash itself */
  getBlock: (cid: string) => Promise<Uint8Array>
  /**
   * answers a function's `ctx.store.get` at the versions its request fixes. Without it, a read of
   * a namespace the request fixes ends the call without a receipt (this machine cannot read).
   */
  read?: ReadAt
  /** this node's current signed covenant */
  covenant: () => SignedCovenant
  /**
   * this node's view of the network, itself included (a node's: its peer table plus itself). It
   * runs a request only if it is among the first `2k + maxUnprovenSkips` eligible live peers there.
   */
  view: () => View
  /** the slack above: how many unproven skips a verifier is expected to accept. @default 1 */
  maxUnprovenSkips?: number
  /** bytes of replies kept for replays (receipts with their outputs) until their deadline. @default 128 MiB */
  replyCacheBytes?: number
  /** @default Date.now */
  now?: () => number
  /** misbehave on purpose; the node allows this only in a devnet */
  fault?: FaultKind
  /** called by the `crash` fault mid-execution; the node exits the process there. Required with it. */
  onCrash?: () => void
  /**
   * puts a stored output's blocks (stored-output.ts) into the content network, and resolves once
   * they are held; without it the executor refuses requests for more than 1 MiB of output
   */
  storeOutput?: (blocks: OutputBlock[]) => Promise<void>
  /** calls waiting for a slot beyond the covenant's concurrency; more are PEER_BUSY. @default 4 × concurrency */
  maxQueue?: number
  /**
   * Holds a call against its caller's credit before it runs (the node's payee ledger): throws to
   * refuse it (PAYMENT_REQUIRED, signed as a refusal that does not stand), or returns a hold that
   * is narrowed to the receipt's charge once signed, or released if no receipt comes of it.
   */
  admit?: (request: SignedRequest, id: string) => { signed(receipt: Receipt): void; release(): void }
  /** decoded code bundles kept. @default 64 */
  codeCacheEntries?: number
  /** characters of decoded code kept. @default 64 Mi */
  codeCacheChars?: number
}

export interface ExecuteOptions {
  /** aborts a call still waiting for a slot, and the deliberate waits of the `slow`/`silent` faults */
  signal?: AbortSignal
}

export interface ExecutorStats {
  /** calls answered with a receipt */
  executed: number
  /** calls refused (bad request, covenant, selection, busy, deadline) or failed before a receipt */
  refused: number
  /** requests answered from the replies kept, without running them again */
  replayed: number
  running: number
  queued: number
  codeCache: { entries: number; size: number; hits: number; misses: number }
}

export interface Executor {
  /** the executor's key id, as it signs receipts */
  readonly peer: string
  /**
   * Answers a request: a signed receipt with the output, or a signed refusal. Throws (no reply to
   * sign) only for a request it cannot read or check (INVALID_REQUEST, INVALID_SIGNATURE, …), or
   * when it is stopped.
   */
  execute(request: unknown, options?: ExecuteOptions): Promise<ExecReply>
  /**
   * Runs a request once to see what it costs (a gateway's quote): as `execute`, with a signed
   * receipt, but whether or not this node ranks among its executors, and neither kept for replays
   * nor shared with a run of the same request. Throws what `execute` would sign as a refusal.
   */
  dryRun(request: unknown, options?: ExecuteOptions): Promise<ExecResult>
  stats(): ExecutorStats
  /** rejects waiting calls and pending fault waits; running sandbox calls finish */
  stop(): void
}

interface Waiter {
  resolve: () => void
  reject: (err: unknown) => void
}

/** Waits `ms` or until `signal`/`stopped` aborts, whichever is first. */
function wait(ms: number, signals: AbortSignal[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const signal = AbortSignal.any(signals)
    if (signal.aborted) return reject(abortError(signal))
    const timer = Number.isFinite(ms) ? setTimeout(done, Math.max(0, ms)) : undefined
    function done() {
      signal.removeEventListener('abort', onAbort)
      resolve()
    }
    function onAbort() {
      clearTimeout(timer)
      reject(abortError(signal))
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}

function abortError(signal: AbortSignal): CovenantError {
  return signal.reason instanceof CovenantError
    ? signal.reason
    : new CovenantError('PEER_TIMEOUT', 'the call was abandoned', { cause: signal.reason })
}

/**
 * The sandbox's reader for one request: a namespace the request does not fix is the function's
 * mistake, the same on every executor (STORE_NOT_FIXED, signed); anything the host cannot answer
 * is this machine's (INTERNAL, unsigned).
 */
function readerFor(request: SignedRequest, read: ReadAt | undefined): StoreReader {
  return (ns, key, { signal }) => {
    const at =
      request.reads === undefined || !Object.hasOwn(request.reads, ns) ? undefined : request.reads[ns]
    if (at === undefined)
      return {
        error: {
          code: 'STORE_NOT_FIXED',
          message: `the request fixes no version of namespace ${ns}: name it in the call's stores`,
        },
      }
    if (read === undefined) throw new Error('this executor cannot read datastores')
    return read(ns, key, at, { signal })
  }
}

function jsonText(value: unknown): string {
  // The sandbox's value is what QuickJS's JSON.parse gave for the text its JSON.stringify wrote;
  // writing it again gives that same text (insertion order, the same number and string forms).
  return JSON.stringify(value) ?? 'null'
}

interface Kept {
  reply: Promise<ExecReply>
  expires: number
  size: number
}

/**
 * The replies given, by request id, until the request's deadline (+ clock skew): a request seen
 * again gets the same reply, and one still running shares the run. Bounded in bytes: when full,
 * new requests are refused (PEER_BUSY) rather than a kept reply dropped, so nothing runs twice.
 */
class ReplyCache {
  readonly #entries = new Map<string, Kept>()
  readonly #maxBytes: number
  #size = 0

  constructor(maxBytes: number) {
    this.#maxBytes = maxBytes
  }

  get(id: string, now: number): Promise<ExecReply> | undefined {
    const kept = this.#entries.get(id)
    if (kept === undefined) return undefined
    if (kept.expires > now) return kept.reply
    this.drop(id)
    return undefined
  }

  /** Whether a new reply fits, after dropping the expired ones if it would not. */
  fits(now: number): boolean {
    if (this.#size < this.#maxBytes) return true
    for (const [id, kept] of this.#entries) if (kept.expires <= now) this.drop(id)
    return this.#size < this.#maxBytes
  }

  hold(id: string, reply: Promise<ExecReply>, expires: number, size: number): void {
    this.#entries.set(id, { reply, expires, size })
    this.#size += size
  }

  resize(id: string, size: number): void {
    const kept = this.#entries.get(id)
    if (kept === undefined) return
    this.#size += size - kept.size
    kept.size = size
  }

  drop(id: string): void {
    const kept = this.#entries.get(id)
    if (kept === undefined) return
    this.#entries.delete(id)
    this.#size -= kept.size
  }
}

/** Room a kept reply takes besides its output. */
const REPLY_OVERHEAD = 1024

function replySize(reply: ExecReply): number {
  if (!('output' in reply)) return REPLY_OVERHEAD
  const { json, logs, store, jobs } = reply.output
  let size = REPLY_OVERHEAD + (json?.length ?? 0)
  for (const line of logs) size += line.length
  if (store !== undefined || jobs !== undefined) size += JSON.stringify([store, jobs]).length
  return size
}

/**
 * Creates an executor. A request it cannot check gets a plain error (INVALID_REQUEST,
 * INVALID_SIGNATURE, INVALID_KEY_ID). Otherwise it answers with a signed refusal when the
 * request's times are off (DEADLINE_EXCEEDED, INVALID_REQUEST), its covenant refuses the function
 * or the limits (COVENANT_REFUSED), the manifest lacks the export (NO_SUCH_EXPORT), its own view
 * does not rank it among the first `2k + maxUnprovenSkips` eligible peers (NOT_SELECTED), or it is
 * saturated (PEER_BUSY); and with a signed receipt for every sandbox outcome that depends only on
 * the function — a value or an error such as FUEL_EXHAUSTED, MEMORY_LIMIT, USER_ERROR, TIMEOUT.
 */
export function createExecutor(init: ExecutorInit): Executor {
  const { key, sandbox, getBlock, fault } = init
  const build = init.build ?? SANDBOX_BUILD
  if (!Sha256HexSchema.safeParse(build).success)
    throw new CovenantError(
      'INVALID_INPUT',
      `the sandbox build must be 64 lower-case hex digits, got ${build}`,
    )
  const now = init.now ?? Date.now
  const peer = keyId(key)
  const slack = init.maxUnprovenSkips ?? DEFAULT_TRUST.maxUnprovenSkips
  const replies = new ReplyCache(init.replyCacheBytes ?? 128 * MiB)
  if (fault !== undefined && !FAULT_KINDS.includes(fault))
    throw new CovenantError('INVALID_INPUT', `unknown fault ${JSON.stringify(fault)}`)
  if (fault === 'crash' && init.onCrash === undefined)
    throw new CovenantError('INVALID_INPUT', 'the crash fault needs an onCrash callback')

  const manifests = new LruCache<Manifest>({ maxEntries: 1024, maxSize: 1024, sizeOf: () => 1 })
  const codes = new LruCache<string>({
    maxEntries: init.codeCacheEntries ?? 64,
    maxSize: init.codeCacheChars ?? 64 * MiB,
    sizeOf: (code) => code.length,
  })
  const stopper = new AbortController()
  const queue: Waiter[] = []
  let running = 0
  let executed = 0
  let refused = 0
  let replayed = 0
  let crashed = false

  async function fetchVerified(cidText: string): Promise<{ cid: CID; bytes: Uint8Array }> {
    const cid = parseCid(cidText)
    const bytes = await getBlock(cidText)
    if (!verifyBlock(cid, bytes))
      throw new CovenantError('HASH_MISMATCH', `the block fetched for ${cidText} does not hash to it`)
    return { cid, bytes }
  }

  function loadManifest(fn: string): Promise<Manifest> {
    return manifests.get(fn, async () => decodeManifest((await fetchVerified(fn)).bytes))
  }

  function loadCode(manifest: Manifest): Promise<string> {
    const cidText = manifest.code.toString()
    return codes.get(cidText, async () => {
      const { bytes } = await fetchVerified(cidText)
      try {
        return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
      } catch (err) {
        throw new CovenantError('INVALID_CODE', `the code block ${cidText} is not UTF-8 text`, { cause: err })
      }
    })
  }

  async function acquire(concurrency: number, deadline: number, signal?: AbortSignal): Promise<void> {
    if (running < concurrency && queue.length === 0) {
      running++
      return
    }
    const maxQueue = init.maxQueue ?? 4 * concurrency
    if (queue.length >= maxQueue)
      throw new CovenantError('PEER_BUSY', `${running} calls running and ${queue.length} waiting`)
    const slot = new Promise<void>((resolve, reject) => queue.push({ resolve, reject }))
    const signals = [stopper.signal, AbortSignal.timeout(Math.max(0, deadline - now()))]
    if (signal !== undefined) signals.push(signal)
    const abandon = AbortSignal.any(signals)
    const waiter = queue[queue.length - 1]
    const onAbort = () => {
      const i = queue.indexOf(waiter)
      if (i >= 0) queue.splice(i, 1)
      waiter.reject(
        abandon.reason instanceof DOMException && abandon.reason.name === 'TimeoutError'
          ? new CovenantError('DEADLINE_EXCEEDED', 'the deadline passed while waiting for a free slot')
          : abortError(abandon),
      )
    }
    abandon.addEventListener('abort', onAbort, { once: true })
    try {
      await slot
    } finally {
      abandon.removeEventListener('abort', onAbort)
    }
  }

  function release(): void {
    const next = queue.shift()
    // The slot passes straight to the next waiter, so `running` stays the same.
    if (next !== undefined) next.resolve()
    else running--
  }

  /** Refuses (NOT_SELECTED) unless this node is among the first 2k + slack eligible peers of its view. */
  function checkSelected(request: SignedRequest, manifest: Manifest): void {
    const { ordered } = rankExecutors(init.view(), request, manifest)
    const rank = ordered.indexOf(peer)
    const within = 2 * request.k + slack
    if (rank < 0 || rank >= within)
      throw new CovenantError(
        'NOT_SELECTED',
        rank < 0
          ? `${peer} is not an eligible executor in its own view`
          : `${peer} ranks ${rank + 1} among the eligible executors in its own view; only the first ${within} run it`,
      )
  }

  async function run(
    request: SignedRequest,
    id: string,
    signal?: AbortSignal,
    dry = false,
  ): Promise<ExecResult> {
    const signed = init.covenant()
    const config = signed.config
    if (!config.execute.enabled) throw new CovenantError('COVENANT_REFUSED', `${peer} does not execute code`)
    const manifest = await loadManifest(request.fn)
    const verdict = mayExecute(config, {
      tags: manifest.tags,
      publisher: manifest.publisher,
      fuel: request.fuel,
      memoryMiB: request.memoryMiB,
      timeoutMs: request.timeoutMs,
      outputMiB: request.outputMiB,
    })
    if (!verdict.ok) throw new CovenantError('COVENANT_REFUSED', `${peer} ${verdict.reason}`)
    if ((request.outputMiB ?? 1) > 1 && init.storeOutput === undefined)
      throw new CovenantError('COVENANT_REFUSED', `${peer} does not store outputs above 1 MiB`)
    if (!manifest.exports.includes(request.export))
      throw new CovenantError(
        'NO_SUCH_EXPORT',
        `the function does not export ${JSON.stringify(request.export)}; it exports ${manifest.exports.join(', ')}`,
      )
    if (!dry) checkSelected(request, manifest)
    const code = await loadCode(manifest)
    const held = init.admit?.(request, id)
    try {
      const reply = await runAdmitted(request, id, code, config.execute.concurrency, signed.version, signal)
      held?.signed(reply.receipt)
      return reply
    } catch (err) {
      held?.release()
      throw err
    }
  }

  async function runAdmitted(
    request: SignedRequest,
    id: string,
    code: string,
    concurrency: number,
    covenantVersion: number,
    signal?: AbortSignal,
  ): Promise<ExecResult> {
    await acquire(concurrency, request.deadline, signal)
    let result: SandboxResult
    let timeoutMs: number
    try {
      const remaining = request.deadline - now()
      if (remaining < 10)
        throw new CovenantError('DEADLINE_EXCEEDED', 'the deadline passed before the call could run')
      timeoutMs = Math.min(request.timeoutMs, remaining)
      // Every limit that can change the outcome is fixed by the request or the protocol, never by
      // this node's configuration, so honest executors reach the same output. mayExecute above
      // already refused requests above the covenant's limits.
      const call: SandboxCall = {
        code,
        exportName: request.export,
        args: request.args,
        seed: id,
        now: request.timestamp,
        request: { id, caller: request.caller },
        read: readerFor(request, init.read),
        limits: {
          ...DEFAULT_LIMITS,
          fuel: request.fuel,
          memoryBytes: request.memoryMiB * MiB,
          timeoutMs,
          outputBytes: (request.outputMiB ?? 1) * MiB,
        },
      }
      const pending = sandbox.run(call)
      if (fault === 'crash') {
        crashed = true
        init.onCrash?.()
        pending.catch(() => {})
        throw new CovenantError('PEER_UNREACHABLE', `${peer} crashed mid-execution`)
      }
      result = await pending
    } finally {
      release()
    }

    if (!result.ok && MACHINE_FAILURES.has(result.error.code))
      throw new CovenantError(
        isErrorCode(result.error.code) ? result.error.code : 'SANDBOX_CRASHED',
        result.error.message,
      )
    // A wall-clock stop cut short by the deadline is this node's lateness, not the function's.
    if (!result.ok && result.error.code === 'TIMEOUT' && timeoutMs < request.timeoutMs)
      throw new CovenantError('DEADLINE_EXCEEDED', 'the deadline cut the call short')

    let output: Output = result.ok
      ? {
          json: jsonText(result.value),
          logs: [...result.logs],
          error: null,
          ...outputEffects(result.effects),
        }
      : {
          json: 'null',
          logs: [...result.logs],
          error: { code: result.error.code, message: result.error.message },
        }
    if (fault === 'wrong-result' || fault === 'late-wrong-result')
      output = { json: JSON.stringify(FORGED_VALUE), logs: [], error: null }
    // Too long to carry: stored as blocks, and the output names them (stored-output.ts).
    if (output.json !== undefined && isStored(output.json)) {
      const { json, ...rest } = output
      const { ref, blocks } = storedOutput(json)
      await init.storeOutput!(blocks)
      output = { ...rest, ref }
    }
    const receipt = signReceipt(key, {
      request: id,
      outputHash: outputHash(output),
      fuel: result.fuel,
      covenantVersion,
      build,
    })
    if (fault === 'bad-signature') {
      const signature = new Uint8Array(receipt.signature)
      signature[0] ^= 0xff
      receipt.signature = signature
    }
    const waitSignals = signal === undefined ? [stopper.signal] : [stopper.signal, signal]
    if (fault === 'slow') await wait(request.deadline - now() + 50, waitSignals)
    if (fault === 'late-wrong-result') await wait(request.deadline - now() - 1000, waitSignals)
    if (fault === 'silent') await wait(Number.POSITIVE_INFINITY, waitSignals)
    return { receipt, output }
  }

  /** A receipt, or a signed refusal; rejects only for the crash fault (no reply at all). */
  async function answer(request: SignedRequest, id: string, signal?: AbortSignal): Promise<ExecReply> {
    try {
      checkRequestTime(request, now())
      const reply = await run(request, id, signal)
      executed++
      return reply
    } catch (err) {
      if (crashed) throw err
      refused++
      return { refusal: signRefusal(key, id, CovenantError.from(err)) }
    }
  }

  return {
    peer,
    async execute(value, options = {}) {
      if (crashed) throw new CovenantError('PEER_UNREACHABLE', `${peer} has crashed`)
      if (stopper.signal.aborted) throw new CovenantError('NOT_STARTED', 'the executor is stopped')
      let checked: { request: SignedRequest; id: string }
      try {
        checked = checkRequest(value)
      } catch (err) {
        refused++
        throw CovenantError.from(err)
      }
      const { request, id } = checked
      const t = now()
      const kept = replies.get(id, t)
      if (kept !== undefined) {
        replayed++
        return kept
      }
      if (!replies.fits(t)) {
        refused++
        const busy = new CovenantError('PEER_BUSY', `${peer} holds as many kept replies as it may`)
        return { refusal: signRefusal(key, id, busy) }
      }
      const reply = answer(request, id, options.signal)
      replies.hold(id, reply, request.deadline + MAX_CLOCK_SKEW_MS, REPLY_OVERHEAD)
      // Kept: receipts and standing refusals. A refusal that may not stand (busy, late, a machine
      // failure) is forgotten, so the request may still run once when asked again.
      reply.then(
        (r) => {
          if ('refusal' in r && !STANDING_REFUSALS.has(r.refusal.code)) replies.drop(id)
          else replies.resize(id, replySize(r))
        },
        () => replies.drop(id),
      )
      return reply
    },
    async dryRun(value, options = {}) {
      if (crashed) throw new CovenantError('PEER_UNREACHABLE', `${peer} has crashed`)
      if (stopper.signal.aborted) throw new CovenantError('NOT_STARTED', 'the executor is stopped')
      const { request, id } = checkRequest(value)
      checkRequestTime(request, now())
      return run(request, id, options.signal, true)
    },
    stats() {
      return { executed, refused, replayed, running, queued: queue.length, codeCache: codes.stats() }
    },
    stop() {
      // Waiters and fault waits listen to this signal and reject themselves.
      stopper.abort(new CovenantError('NOT_STARTED', 'the executor stopped'))
    },
  }
}
