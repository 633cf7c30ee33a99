/**
 * The worker pool: checks and serializes calls on the main thread, runs them on worker threads,
 * ends a call that overruns its wall clock by terminating its worker, and replaces any worker
 * that dies, so hostile code can neither stall the node's event loop nor take the pool down.
 */
import { createHash } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { z } from 'zod'
import { isJsonValue } from '../encoding/index.ts'
import { CovenantError, ERROR_CODES, type ErrorCode } from '../errors/index.ts'
import { PRELUDE, QUICKJS_WASM } from './build.ts'
import { BundleCache } from './bundle-cache.ts'
import type { EngineCall, EngineResult } from './engine.ts'
import { type LimitOverrides, limitOverridesSchema, resolveLimits } from './limits.ts'
import { readBatch, type StoreReader } from './reads.ts'
import type { SandboxResult } from './result.ts'
import type { WorkerAnswersMessage, WorkerCallMessage, WorkerInit, WorkerReply } from './worker.ts'

/** One call: which export of which bundle, on what, under which deterministic inputs. */
export const sandboxCallSchema = z.object({
  /** one ES module's source text, already bundled */
  code: z.string(),
  exportName: z.string().min(1).max(256),
  /** JSON values */
  args: z.array(z.unknown()),
  /** seeds Math.random and ctx.random (the request id in the network) */
  seed: z.string().max(1024),
  /** ms since the epoch; Date and ctx.now read it (the request timestamp) */
  now: z.number().finite(),
  /** exposed to the function as ctx.request; defaults to `{ id: seed, caller: '' }` */
  request: z.object({ id: z.string().max(1024), caller: z.string().max(1024) }).optional(),
  /** over the pool's limits, which are over the defaults */
  limits: limitOverridesSchema.optional(),
  /**
   * Answers `ctx.store.get` (see {@link StoreReader}). Without it, a get of a key the call did not
   * write fails inside the function with an Error saying reads need a datastore.
   */
  read: z.custom<StoreReader>((v) => typeof v === 'function', 'expected a function').optional(),
})
export type SandboxCall = z.input<typeof sandboxCallSchema>

export interface SandboxStats {
  workers: number
  /** workers started and able to take a call (the others are still starting) */
  ready: number
  busy: number
  queued: number
  /** workers replaced after a timeout, a crash or an engine fault */
  restarts: number
  /** bundles held by workers (summed over workers), so repeat calls skip copying the source */
  cachedModules: number
}

export interface Sandbox {
  /** Runs one call. Never rejects for anything the code does: every outcome is a result. */
  run(call: SandboxCall): Promise<SandboxResult>
  /** Ends every worker; calls still queued or running resolve with NOT_STARTED. */
  stop(): Promise<void>
  stats(): SandboxStats
}

export interface SandboxInit {
  /** @default max(1, availableParallelism()) */
  workers?: number
  /** the pool's defaults, under each call's own limits */
  limits?: LimitOverrides
  /**
   * Build a new QuickJS instance for every call instead of restoring one from its snapshot.
   * Several times slower; results are identical either way (the tests compare the two).
   * @default false
   */
  freshInstances?: boolean
}

let wasmModule: Promise<WebAssembly.Module> | undefined

/** The QuickJS WebAssembly module, compiled once per process and shared with every worker. */
function quickjsModule(): Promise<WebAssembly.Module> {
  wasmModule ??= WebAssembly.compile(QUICKJS_WASM)
  return wasmModule
}

interface Job {
  id: number
  hash: string
  code: string
  call: Omit<EngineCall, 'code'>
  read: StoreReader | undefined
  /** aborted when the call ends, so a reader still at work can stop */
  ended: AbortController
  resolve(result: SandboxResult): void
}

interface Slot {
  worker: Worker
  ready: boolean
  job: Job | undefined
  timer: NodeJS.Timeout | undefined
  cache: BundleCache
  retired: boolean
}

/**
 * Why a call's `ended` signal aborts: one reason made once, since `abort()` without one builds a
 * DOMException (and its stack) on every call, and nothing reads it.
 */
const CALL_ENDED = new Error('the sandbox call ended')

const failure = (code: ErrorCode, detail?: string): SandboxResult => ({
  ok: false,
  error: {
    code,
    message: detail === undefined ? ERROR_CODES[code].message : `${ERROR_CODES[code].message}: ${detail}`,
  },
  fuel: 0,
  logs: [],
})

function seedWords(seed: string): [number, number, number, number] {
  const d = createHash('sha256').update(seed).digest()
  return [d.readUInt32BE(0), d.readUInt32BE(4), d.readUInt32BE(8), d.readUInt32BE(12)]
}

export function createSandbox(init: SandboxInit = {}): Sandbox {
  const workerCount = init.workers ?? Math.max(1, availableParallelism())
  if (!Number.isSafeInteger(workerCount) || workerCount < 1 || workerCount > 256) {
    throw new CovenantError(
      'CONFIG_INVALID',
      `workers must be a whole number from 1 to 256, got ${workerCount}`,
    )
  }
  const parsed = limitOverridesSchema.safeParse(init.limits ?? {})
  if (!parsed.success)
    throw new CovenantError('CONFIG_INVALID', `sandbox limits: ${z.prettifyError(parsed.error)}`)
  const poolLimits = resolveLimits(parsed.data)

  const slots: Slot[] = []
  const queue: Job[] = []
  const hashes = new Map<string, string>()
  let nextId = 1
  let cursor = 0
  let restarts = 0
  let stopped = false
  let startFailures = 0
  let broken: string | undefined

  const started = quickjsModule().then((mod) => {
    if (!stopped) for (let i = 0; i < workerCount; i++) slots.push(spawn(mod))
    return mod
  })
  // a failure here surfaces through run(); keep it from being an unhandled rejection meanwhile
  started.catch(() => {})

  function spawn(mod: WebAssembly.Module): Slot {
    const worker = new Worker(new URL('./worker.ts', import.meta.url), {
      workerData: {
        wasmModule: mod,
        prelude: PRELUDE,
        prewarmMemoryBytes: poolLimits.memoryBytes,
        freshInstances: init.freshInstances === true,
      } satisfies WorkerInit,
      // QuickJS frames also use the thread's native stack; give it room beyond QuickJS's own limit
      resourceLimits: { stackSizeMb: 16, maxOldGenerationSizeMb: 512 },
    })
    const slot: Slot = {
      worker,
      ready: false,
      job: undefined,
      timer: undefined,
      cache: new BundleCache(),
      retired: false,
    }
    worker.unref()
    worker.on('message', (msg: WorkerReply) => {
      if (slot.retired) return
      if (msg.type === 'ready') {
        slot.ready = true
        startFailures = 0
        dispatch()
        return
      }
      const job = slot.job
      if (job === undefined || job.id !== msg.id) return
      if (msg.type === 'reads') {
        void readBatch(job.read, msg.reads, job.ended.signal).then((r) => {
          if (slot.job === job && !slot.retired)
            slot.worker.postMessage({ type: 'answers', id: job.id, reply: r } satisfies WorkerAnswersMessage)
        })
        return
      }
      finish(slot, stripEngineFields(msg.result))
      if (msg.result.discardWorker === true) replace(slot)
      else dispatch()
    })
    const died = (err: Error | undefined) => {
      if (slot.retired) return
      if (!slot.ready) {
        startFailures++
        if (startFailures >= 3) broken = `workers fail to start: ${err?.message ?? 'exited'}`
      }
      const oom = (err as { code?: string } | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY'
      if (slot.job !== undefined) {
        finish(
          slot,
          oom ? failure('MEMORY_LIMIT') : failure('SANDBOX_CRASHED', err?.message ?? 'worker exited'),
        )
      }
      replace(slot)
    }
    worker.on('error', died)
    worker.on('exit', () => died(undefined))
    return slot
  }

  function stripEngineFields(r: EngineResult): SandboxResult {
    if (!r.ok) return { ok: false, error: r.error, fuel: r.fuel, logs: r.logs }
    if (r.effects === undefined) return { ok: true, value: r.value, fuel: r.fuel, logs: r.logs }
    return { ok: true, value: r.value, fuel: r.fuel, logs: r.logs, effects: r.effects }
  }

  function finish(slot: Slot, result: SandboxResult): void {
    const job = slot.job
    if (slot.timer !== undefined) clearTimeout(slot.timer)
    slot.timer = undefined
    slot.job = undefined
    slot.worker.unref()
    job?.ended.abort(CALL_ENDED)
    job?.resolve(result)
  }

  function replace(slot: Slot): void {
    slot.retired = true
    if (slot.timer !== undefined) clearTimeout(slot.timer)
    void slot.worker.terminate()
    const i = slots.indexOf(slot)
    if (i < 0 || stopped) return
    restarts++
    if (broken !== undefined) {
      slots.splice(i, 1)
      failQueued()
      return
    }
    void started.then((mod) => {
      if (!stopped) slots[i] = spawn(mod)
    })
  }

  function failQueued(): void {
    if (broken === undefined) return
    for (const job of queue.splice(0)) job.resolve(failure('SANDBOX_CRASHED', broken))
  }

  function dispatch(): void {
    // round robin, so each worker has time to prewarm its next instance between calls
    for (let k = 0; k < slots.length; k++) {
      if (queue.length === 0) return
      const slot = slots[(cursor + k) % slots.length]
      if (!slot.ready || slot.job !== undefined || slot.retired) continue
      const job = queue.shift()!
      const known = slot.cache.has(job.hash)
      slot.cache.put(job.hash, job.code.length)
      const msg: WorkerCallMessage = {
        type: 'call',
        id: job.id,
        hash: job.hash,
        code: known ? undefined : job.code,
        codeChars: job.code.length,
        call: job.call,
        canRead: job.read !== undefined,
      }
      cursor = (slots.indexOf(slot) + 1) % slots.length
      slot.job = job
      slot.worker.ref()
      slot.timer = setTimeout(() => {
        if (slot.job !== job) return
        finish(slot, failure('TIMEOUT', `more than ${job.call.limits.timeoutMs} ms`))
        replace(slot)
      }, job.call.limits.timeoutMs)
      slot.worker.postMessage(msg)
    }
  }

  function hashOf(code: string): string {
    let h = hashes.get(code)
    if (h === undefined) {
      h = createHash('sha256').update(code).digest('base64url')
      if (hashes.size >= 16) hashes.delete(hashes.keys().next().value!)
      hashes.set(code, h)
    }
    return h
  }

  return {
    async run(input) {
      if (stopped) return failure('NOT_STARTED', 'the sandbox is stopped')
      const parsedCall = sandboxCallSchema.safeParse(input)
      if (!parsedCall.success) return failure('INVALID_INPUT', z.prettifyError(parsedCall.error))
      const call = parsedCall.data
      const limits = resolveLimits(poolLimits, call.limits)
      if (call.code.length > limits.bundleBytes || Buffer.byteLength(call.code) > limits.bundleBytes) {
        return failure('BUNDLE_TOO_LARGE', `more than ${limits.bundleBytes} bytes`)
      }
      let argsJson: string
      try {
        if (!isJsonValue(call.args)) return failure('INVALID_ARGS', 'arguments must be JSON values')
        argsJson = JSON.stringify(call.args)
      } catch {
        return failure('INVALID_ARGS', 'arguments are nested too deeply')
      }
      if (Buffer.byteLength(argsJson) > limits.argsBytes) {
        return failure('INVALID_ARGS', `arguments are more than ${limits.argsBytes} bytes`)
      }
      try {
        await started
      } catch (err) {
        return failure('SANDBOX_CRASHED', `QuickJS could not be loaded: ${(err as Error).message}`)
      }
      if (broken !== undefined) return failure('SANDBOX_CRASHED', broken)
      if (stopped) return failure('NOT_STARTED', 'the sandbox is stopped')
      return new Promise<SandboxResult>((resolve) => {
        queue.push({
          id: nextId++,
          hash: hashOf(call.code),
          code: call.code,
          call: {
            exportName: call.exportName,
            argsJson,
            seedWords: seedWords(call.seed),
            now: call.now,
            requestJson: JSON.stringify(call.request ?? { id: call.seed, caller: '' }),
            limits,
          },
          read: call.read,
          ended: new AbortController(),
          resolve,
        })
        dispatch()
      })
    },
    async stop() {
      if (stopped) return
      stopped = true
      const gone = failure('NOT_STARTED', 'the sandbox was stopped')
      for (const job of queue.splice(0)) {
        job.ended.abort(CALL_ENDED)
        job.resolve(gone)
      }
      await started.catch(() => {})
      const ending: Promise<number>[] = []
      for (const slot of slots) {
        if (slot.job !== undefined) finish(slot, gone)
        slot.retired = true
        ending.push(slot.worker.terminate())
      }
      await Promise.all(ending)
    },
    stats() {
      return {
        workers: slots.length,
        ready: slots.filter((s) => s.ready && !s.retired).length,
        busy: slots.filter((s) => s.job !== undefined).length,
        queued: queue.length,
        restarts,
        cachedModules: slots.reduce((n, s) => n + s.cache.size, 0),
      }
    },
  }
}
