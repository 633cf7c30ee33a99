/**
 * One call in QuickJS, inside a worker thread. No call sees another's state, memory layout or
 * allocator history, so fuel and memory outcomes are byte-identical in any worker.
 *
 * An instance is built once (instantiate, runtime, context, prelude: ≈ 20 ms) and its linear
 * memory snapshotted. After a clean call the memory is written back from the snapshot, byte for
 * byte (zeros included), which puts the instance exactly where a fresh one would be: the linear
 * memory is the whole of QuickJS's and the C library's state. What lives outside it is handled:
 * - the one WebAssembly global, the stack pointer, must be back at its base after the call;
 * - the memory's size must not have changed (it decides MEMORY_LIMIT; a grown one is not kept);
 * - quickjs-emscripten's JS side keeps handles (pointers into memory, never freed across calls:
 *   nothing here disposes a handle, so nothing frees into restored memory), the host-function
 *   table (checked unchanged), and the "interrupt handler enabled" flag (so the handler is set
 *   once, before the snapshot, and reads per-call fuel state reset by execute());
 * - Emscripten's JS glue holds no per-call state QuickJS uses (time comes from the pinned Date).
 * Any other outcome — out of memory, stack overflow, a crash, a host fault, a read the host failed
 * — throws the instance away and the next call gets a new one. Restoring costs ≈ 0.3–0.6 ms and
 * runs while the worker is idle, a few ms after the result is sent (worker.ts), or as the next call
 * starts if that comes first.
 *
 * A call that reads a datastore waits for the host between runs of its job queue: when no job is
 * left and the export's promise is still pending, the reads the function asked for since the last
 * wait go to the host as one batch, and the call resumes only once every answer is in, delivered
 * in the order the reads were asked. No fuel is counted while waiting (nothing runs), and where
 * the function resumes depends only on what it did and on the answers, never on their timing. A
 * host that never answers is ended by the wall clock: the pool terminates the worker, instance and
 * all.
 *
 * The instance's WebAssembly memory has `maximum = limits.memoryBytes`: in this build QuickJS
 * cannot see malloc_usable_size, so its own memory accounting undercounts by several times
 * (measured: a 64 MiB runtime limit let an array bomb grow the heap to 357 MiB). The bounded
 * WebAssembly memory is the limit that holds; the runtime limit is kept as a first, cheaper stop.
 * Instances are never disposed: after an out-of-memory or an interrupt QuickJS can assert while
 * freeing, and dropping the whole instance frees everything anyway.
 */
import variant from '@jitl/quickjs-wasmfile-release-sync'
import {
  newQuickJSWASMModuleFromVariant,
  newVariant,
  type QuickJSContext,
  type QuickJSHandle,
  type QuickJSRuntime,
  type QuickJSSyncVariant,
} from 'quickjs-emscripten-core'
import { ERROR_CODES, type ErrorCode } from '../errors/index.ts'
import {
  BYTES_PER_TICK,
  CallEffects,
  EFFECT_LIMITS,
  type HostArg,
  type ReadAnswer,
  type ReadRequest,
} from './effects.ts'
import type { SandboxLimits } from './limits.ts'
import type { SandboxResult } from './result.ts'

const PAGE = 65536
// Emscripten prints its own aborts; the result already says what happened. The loader hands these
// to Emscripten verbatim, but its type does not list them.
const QUIET = { print() {}, printErr() {} } as object as Parameters<typeof newVariant>[1]['emscriptenModule']
const INITIAL_PAGES = 256
/** `emscripten_stack_get_current` in this (pinned) build's minified exports; checked at startup */
const STACK_POINTER_EXPORT = 'Oa'
/** `emscripten_resize_heap` in this build's minified imports; checked at startup */
const RESIZE_HEAP_IMPORT = 'k'

/** Thrown out of the heap's growth when the WebAssembly memory is at its cap: it ends the call. */
class MemoryCapReached extends Error {}

/**
 * Makes the first failed growth of the heap end the call with MEMORY_LIMIT. Emscripten grows the
 * memory by 5–20 % more than it needs, so it cannot use the last few pages below the cap; a call
 * that keeps allocating there (catching QuickJS's out-of-memory error, or through an allocation
 * QuickJS tolerates failing) can retry the failing growth millions of times without reaching an
 * interrupt check, a hang whose onset depends on the heap's exact layout. Unwinding at the first
 * failure makes the cap one deterministic stop. Without the import (another QuickJS build) the
 * wall clock still ends such a call.
 */
function stopAtMemoryCap(imports: WebAssembly.Imports): void {
  for (const table of Object.values(imports) as Array<Record<string, unknown>>) {
    const resize = table[RESIZE_HEAP_IMPORT]
    if (typeof resize !== 'function' || !String(resize).includes('.grow(')) continue
    table[RESIZE_HEAP_IMPORT] = (requested: number): boolean => {
      if (resize(requested) === true) return true
      throw new MemoryCapReached('the WebAssembly memory is at its maximum')
    }
  }
}

/** A call as the worker receives it: arguments already checked and serialized by the pool. */
export interface EngineCall {
  code: string
  exportName: string
  argsJson: string
  seedWords: [number, number, number, number]
  now: number
  requestJson: string
  limits: SandboxLimits
}

/** A result, plus whether the worker should be replaced (the host side of the engine faulted). */
export type EngineResult = SandboxResult & { discardWorker?: boolean }

/**
 * The host's answer to one batch of reads: every answer, in the order asked, or the first error in
 * that order (the call ends with it).
 */
export type ReadBatchReply = { answers: ReadAnswer[] } | { error: { code: ErrorCode; message: string } }

/** What answers a call's reads. Without one, `ctx.store.get` of a key the call did not write fails. */
export interface EngineHost {
  read(batch: ReadRequest[]): Promise<ReadBatchReply>
}

interface Instance {
  memoryBytes: number
  mem: WebAssembly.Memory
  rt: QuickJSRuntime
  ctx: QuickJSContext
  driver: QuickJSHandle
  readStackPointer: () => number
  /** the stack pointer between calls */
  stackBase: number
  /** the host-function table at the snapshot; undefined if it cannot be read (then no reuse) */
  hostRefs: string | undefined
  /** linear memory right after the prelude, before any call */
  snapshot: Snapshot
  snapshotBytes: number
  // per call, reset by execute()
  logs: string[]
  logBytes: number
  logLimit: number
  fatal: ErrorCode | undefined
  fuel: number
  fuelLimit: number
  /** counting fuel: only while the bundle and the export run, not while the host sets up */
  metering: boolean
  /** what the call reads, writes and enqueues */
  effects: CallEffects
  /** ticks charged so far for bytes moved through ctx.store and ctx.enqueue */
  movedTicks: number
}

/**
 * QuickJS computes local time through Emscripten, which asks the host's `Date` for the time zone.
 * Pinning this worker's `Date` to UTC makes `getHours()`, `toString()` and friends inside the
 * sandbox identical whatever TZ the node runs under. Call once, in the worker, before any call.
 */
export function pinHostTimeZoneToUTC(): void {
  const HostDate = globalThis.Date
  class UTCDate extends HostDate {
    constructor(...args: unknown[]) {
      if (args.length > 1) super(HostDate.UTC(...(args as [number, number])))
      else super(...(args as []))
    }
    override getTimezoneOffset(): number {
      return 0
    }
    override getFullYear(): number {
      return this.getUTCFullYear()
    }
    override getMonth(): number {
      return this.getUTCMonth()
    }
    override getDate(): number {
      return this.getUTCDate()
    }
    override getDay(): number {
      return this.getUTCDay()
    }
    override getHours(): number {
      return this.getUTCHours()
    }
    override getMinutes(): number {
      return this.getUTCMinutes()
    }
    override getSeconds(): number {
      return this.getUTCSeconds()
    }
  }
  globalThis.Date = UTCDate as DateConstructor
}

function fail(code: ErrorCode, detail?: string): { code: ErrorCode; message: string } {
  const base = ERROR_CODES[code].message
  return { code, message: detail === undefined ? base : `${base}: ${detail}` }
}

export interface EngineOptions {
  /**
   * Instantiate QuickJS afresh for every call instead of restoring the snapshot. Slower; kept so
   * tests can check that a restored instance gives byte-identical results to a fresh one.
   */
  fresh?: boolean
}

export interface EngineStats {
  /** instances built from the WebAssembly module (the first is built on the first prewarm) */
  instantiated: number
  /** calls that ran in an instance restored from its snapshot */
  restored: number
}

export interface Engine {
  /** Runs one call; `host` answers its reads (without one, reads fail inside the function). */
  run(call: EngineCall, host?: EngineHost): Promise<EngineResult>
  /** Makes the next instance ready now (restore or instantiate), so the next call does not wait. */
  prewarm(memoryBytes: number): Promise<void>
  stats(): EngineStats
  /** A copy of the linear memory of the instance the next call will get (for tests). */
  nextMemory(): Promise<Uint8Array | undefined>
}

/**
 * Outcomes after which the engine is known to be consistent: QuickJS returned through every C
 * frame (a fuel or log stop is an interrupt QuickJS unwinds itself). Anything else — memory or
 * stack exhaustion, a crash, a host fault — throws the instance away.
 */
const CLEAN: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'USER_ERROR',
  'INVALID_CODE',
  'NO_SUCH_EXPORT',
  'NEVER_SETTLED',
  'OUTPUT_TOO_LARGE',
  'FUEL_EXHAUSTED',
  'LOG_LIMIT',
])

/**
 * An engine for one worker: `wasmModule` is QuickJS compiled, `prelude` the script every instance
 * evaluates before its snapshot (both from build.ts, which names them in SANDBOX_BUILD).
 */
export function createEngine(
  wasmModule: WebAssembly.Module,
  prelude: string,
  options: EngineOptions = {},
): Engine {
  let next: Promise<Instance> | undefined
  let nextMemory = 0
  /** the instance of the last call, reusable once restored */
  let used: Instance | undefined
  const stats: EngineStats = { instantiated: 0, restored: 0 }

  async function instantiate(memoryBytes: number): Promise<Instance> {
    stats.instantiated++
    const maximum = Math.max(INITIAL_PAGES, Math.ceil(memoryBytes / PAGE))
    const mem = new WebAssembly.Memory({ initial: INITIAL_PAGES, maximum })
    let exports: WebAssembly.Exports | undefined
    // Instantiating here (rather than passing `wasmModule` to newVariant) hands us the exports,
    // which include the function that reads the stack pointer (the module's only global).
    const emscriptenModule = {
      ...QUIET,
      instantiateWasm(imports: WebAssembly.Imports, done: (instance: WebAssembly.Instance) => void) {
        stopAtMemoryCap(imports)
        void WebAssembly.instantiate(wasmModule, imports).then((instance) => {
          exports = instance.exports
          done(instance)
        })
        return {}
      },
    } as object as Parameters<typeof newVariant>[1]['emscriptenModule']
    const mod = await newQuickJSWASMModuleFromVariant(
      newVariant(variant as unknown as QuickJSSyncVariant, { wasmMemory: mem, emscriptenModule }),
    )
    // Without a readable stack pointer (another QuickJS build) reuse is unsound: every instance
    // is then used once, as if `fresh` were set — slower, never wrong.
    const exported = exports?.[STACK_POINTER_EXPORT]
    const stackPointer =
      typeof exported === 'function' && typeof exported() === 'number'
        ? (exported as () => number)
        : undefined
    const rt = mod.newRuntime()
    const ctx = rt.newContext()
    const inst: Instance = {
      memoryBytes,
      mem,
      rt,
      ctx,
      driver: ctx.undefined,
      readStackPointer: stackPointer ?? (() => Number.NaN),
      stackBase: 0,
      hostRefs: undefined,
      snapshot: [],
      snapshotBytes: 0,
      logs: [],
      logBytes: 0,
      logLimit: 0,
      fatal: undefined,
      fuel: 0,
      fuelLimit: 0,
      metering: false,
      effects: new CallEffects(false),
      movedTicks: 0,
    }
    rt.setModuleLoader((name) => ({
      error: new Error(
        `the bundle imports "${name}", which the sandbox does not provide (no Node built-ins, files or URLs; bundle npm packages into the function)`,
      ),
    }))
    // Enabled once, before the snapshot: the C side's "handler enabled" flag lives in linear
    // memory while quickjs-emscripten remembers on the JS side that it already enabled it, so a
    // per-call setInterruptHandler would not re-enable it after a restore. Ticks count only while
    // `metering`; QuickJS's tick counter runs whether or not a handler is set, so fuel is as before.
    rt.setInterruptHandler(() => {
      if (!inst.metering) return false
      inst.fuel++
      if (inst.fatal !== undefined) return true
      if (inst.fuel > inst.fuelLimit) {
        inst.fatal = 'FUEL_EXHAUSTED'
        return true
      }
      return false
    })
    const hostObj = ctx.newObject()
    const log = ctx.newFunction('log', (line) => {
      // measure before copying: a 50 MB string must not be copied out just to be refused
      const len = ctx.getNumber(ctx.getProp(line, 'length'))
      const remaining = inst.logLimit - inst.logBytes
      let text = ''
      if (len < remaining) text = ctx.getString(line)
      const bytes = len < remaining ? Buffer.byteLength(text) + 1 : len + 1
      if (bytes > remaining) {
        inst.fatal ??= 'LOG_LIMIT'
        return { error: ctx.newError('log limit exceeded') }
      }
      inst.logBytes += bytes
      inst.logs.push(text)
    })
    ctx.setProp(hostObj, 'log', log)
    ctx.setProp(
      hostObj,
      'api',
      ctx.newFunction('api', (op, ...args) => storeApi(inst, ctx.getString(op), args)),
    )
    ctx.setProp(ctx.global, '__covenantHost', hostObj)
    inst.driver = ctx.unwrapResult(ctx.evalCode(prelude, 'covenant-prelude.js'))
    inst.stackBase = inst.readStackPointer()
    inst.hostRefs = hostRefState(rt)
    inst.snapshotBytes = mem.buffer.byteLength
    if (options.fresh !== true && stackPointer !== undefined) inst.snapshot = takeSnapshot(mem)
    return inst
  }

  /** Whether the instance can be restored after this call, rather than thrown away. */
  function reusable(inst: Instance, result: EngineResult): boolean {
    if (options.fresh === true || result.discardWorker === true || inst.snapshot.length === 0) return false
    if (!result.ok && !CLEAN.has(result.error.code)) return false
    // a grown memory would change what a later call sees (its size decides MEMORY_LIMIT), and a
    // big one should not be held on to
    if (inst.mem.buffer.byteLength !== inst.snapshotBytes) return false
    // the stack pointer is the one piece of engine state outside linear memory
    if (inst.readStackPointer() !== inst.stackBase) return false
    // host functions are JS closures found by id; QuickJS freeing or adding one would leave the
    // JS-side table out of step with the restored memory
    return inst.hostRefs !== undefined && hostRefState(inst.rt) === inst.hostRefs
  }

  function restore(inst: Instance): Instance {
    applySnapshot(inst.mem, inst.snapshot)
    stats.restored++
    return inst
  }

  function take(memoryBytes: number): Promise<Instance> {
    if (next !== undefined && nextMemory === memoryBytes) {
      const ready = next
      next = undefined
      return ready
    }
    next = undefined
    const last = used
    used = undefined
    if (last !== undefined && last.memoryBytes === memoryBytes) return Promise.resolve(restore(last))
    return instantiate(memoryBytes)
  }

  return {
    async prewarm(memoryBytes) {
      if (next !== undefined && nextMemory === memoryBytes) return
      nextMemory = memoryBytes
      const last = used
      used = undefined
      next =
        last !== undefined && last.memoryBytes === memoryBytes
          ? Promise.resolve(restore(last))
          : instantiate(memoryBytes)
      await next
    },
    async run(call, host) {
      const inst = await take(call.limits.memoryBytes)
      let result: EngineResult
      try {
        result = await execute(inst, call, host)
      } catch (err) {
        result = caught(inst, err, 0)
      }
      inst.metering = false
      if (reusable(inst, result)) used = inst
      return result
    },
    stats: () => ({ ...stats }),
    async nextMemory() {
      const inst = await next
      return inst === undefined ? undefined : new Uint8Array(inst.mem.buffer).slice()
    },
  }
}

/**
 * quickjs-emscripten's table of host values (our `log` function), by id. It changes only if
 * QuickJS frees a host function or one is created; either would be undone in memory by a restore
 * but not in this table. Reads library internals; if they are missing, nothing is reused.
 */
function hostRefState(rt: QuickJSRuntime): string | undefined {
  const refs = (rt as unknown as { hostRefs?: { nextId?: unknown; freelist?: unknown; groups?: unknown } })
    .hostRefs
  if (
    refs === undefined ||
    typeof refs.nextId !== 'number' ||
    !Array.isArray(refs.freelist) ||
    !(refs.groups instanceof Map)
  ) {
    return undefined
  }
  let entries = 0
  for (const group of refs.groups.values()) entries += (group as Map<unknown, unknown>).size
  return `${refs.nextId}/${refs.freelist.length}/${entries}`
}

/** A copy of linear memory: runs of nonzero pages with their bytes, and runs of zeros. */
type Snapshot = Array<{ start: number; end: number; bytes?: Uint8Array }>

const PAGE_CHUNK = 64 * 1024
const SNAPSHOT_CHUNK = 4096
/** zero runs shorter than this are copied with their neighbours: one copy beats many small ops */
const SNAPSHOT_MIN_GAP = 64 * 1024

function takeSnapshot(mem: WebAssembly.Memory): Snapshot {
  const all = Buffer.from(mem.buffer)
  const zero = Buffer.alloc(PAGE_CHUNK)
  const isZero = (p: number, size: number) => all.compare(zero, 0, size, p, p + size) === 0
  const runs: Array<{ start: number; end: number }> = []
  // whole pages first (most are zero), then 4 KiB pieces of the others
  for (let page = 0; page < all.length; page += PAGE_CHUNK) {
    if (isZero(page, PAGE_CHUNK)) continue
    for (let p = page; p < page + PAGE_CHUNK; p += SNAPSHOT_CHUNK) {
      if (isZero(p, SNAPSHOT_CHUNK)) continue
      const last = runs.at(-1)
      if (last !== undefined && p - last.end < SNAPSHOT_MIN_GAP) last.end = p + SNAPSHOT_CHUNK
      else runs.push({ start: p, end: p + SNAPSHOT_CHUNK })
    }
  }
  const snapshot: Snapshot = []
  let at = 0
  for (const run of runs) {
    if (run.start > at) snapshot.push({ start: at, end: run.start })
    // a copy: Buffer's own slice() would be a view of the live memory
    const bytes = new Uint8Array(mem.buffer, run.start, run.end - run.start).slice()
    snapshot.push({ start: run.start, end: run.end, bytes })
    at = run.end
  }
  if (at < all.length) snapshot.push({ start: at, end: all.length })
  return snapshot
}

/**
 * Puts linear memory back byte for byte as it was at the snapshot. Zero runs are written too:
 * the call may have used them, and the allocator takes memory past its break to be zeroed.
 */
function applySnapshot(mem: WebAssembly.Memory, snapshot: Snapshot): void {
  const view = new Uint8Array(mem.buffer)
  for (const run of snapshot) {
    if (run.bytes !== undefined) view.set(run.bytes, run.start)
    else view.fill(0, run.start, run.end)
  }
}

/**
 * An exception out of QuickJS: the instance is left mid-call and is never reused. A memory cap
 * reached is the call's own doing; anything else may be the host's, so the worker goes too.
 */
function caught(inst: Instance, err: unknown, fuel: number): EngineResult {
  if (err instanceof MemoryCapReached)
    return { ok: false, error: fail(inst.fatal ?? 'MEMORY_LIMIT'), fuel, logs: inst.logs }
  return { ...hostFault(inst, err, fuel), discardWorker: true }
}

function hostFault(inst: Instance, err: unknown, fuel: number): SandboxResult {
  const logs = inst.logs
  if (inst.fatal !== undefined) return { ok: false, error: fail(inst.fatal), fuel, logs }
  const text = String(err)
  if (err instanceof RangeError && /call stack/i.test(text)) {
    return { ok: false, error: fail('STACK_OVERFLOW'), fuel, logs }
  }
  if (nearCap(inst) || /OOM|out of memory/i.test(text))
    return { ok: false, error: fail('MEMORY_LIMIT'), fuel, logs }
  return { ok: false, error: fail('SANDBOX_CRASHED', text.slice(0, 500)), fuel, logs }
}

function nearCap(inst: Instance): boolean {
  return inst.mem.buffer.byteLength + 2 * 1024 * 1024 >= inst.memoryBytes
}

/**
 * The longest string each argument of a store operation may be before it is refused unread: no
 * valid namespace id, CID, key, export name or options object is longer, and a value's JSON is
 * at most 6 bytes for each byte of its DAG-CBOR.
 */
const ARG_CAPS: Record<string, number[]> = {
  get: [59, EFFECT_LIMITS.keyBytes],
  put: [59, EFFECT_LIMITS.keyBytes, 6 * EFFECT_LIMITS.valueBytes],
  delete: [59, EFFECT_LIMITS.keyBytes],
  enqueue: [59, 128, EFFECT_LIMITS.jobArgsBytes, 1024],
}

/**
 * The host function behind ctx.store and ctx.enqueue (store.js): reads the arguments out of the
 * sandbox, lets the call's record check and record the operation, charges the bytes moved as fuel,
 * and hands the reply back. Handles made here are freed here.
 */
function storeApi(inst: Instance, op: string, args: QuickJSHandle[]): QuickJSHandle {
  const { ctx } = inst
  // a call that must stop does no more work here: the prelude spins into the next interrupt check
  if (inst.fatal !== undefined) return ctx.newString('x')
  const caps = ARG_CAPS[op] ?? []
  const a: HostArg[] = caps.map((cap, i) => {
    const h = args[i] ?? ctx.undefined
    const type = ctx.typeof(h)
    if (type !== 'string') return { type: type === 'object' ? 'object or null' : type }
    const length = ctx.getProp(h, 'length').consume(ctx.getNumber)
    if (length > cap) return { length }
    // the copy turns a lone surrogate into three U+FFFD: a changed length gives it away
    const text = ctx.getString(h)
    return text.length === length ? text : { illFormed: true }
  })
  const fx = inst.effects
  const reply =
    op === 'get'
      ? fx.get(a[0], a[1])
      : op === 'put' || op === 'delete'
        ? fx.write(op, a[0], a[1], a[2])
        : fx.enqueue(a[0], a[1], a[2], a[3])
  chargeMoved(inst)
  return ctx.newString(inst.fatal === undefined ? reply : 'x')
}

/** Charges the bytes moved through the store as fuel, one tick per BYTES_PER_TICK, cumulatively. */
function chargeMoved(inst: Instance): void {
  const ticks = Math.floor(inst.effects.moved / BYTES_PER_TICK)
  if (ticks <= inst.movedTicks) return
  inst.fuel += ticks - inst.movedTicks
  inst.movedTicks = ticks
  if (inst.fuel > inst.fuelLimit) inst.fatal ??= 'FUEL_EXHAUSTED'
}

async function execute(
  inst: Instance,
  call: EngineCall,
  host: EngineHost | undefined,
): Promise<EngineResult> {
  const { rt, ctx, driver } = inst
  const { limits } = call
  inst.logs = []
  inst.logBytes = 0
  inst.logLimit = limits.logBytes
  inst.fatal = undefined
  inst.fuel = 0
  inst.fuelLimit = limits.fuel
  inst.metering = false
  inst.effects = new CallEffects(host !== undefined)
  inst.movedTicks = 0
  rt.setMemoryLimit(limits.memoryBytes)
  rt.setMaxStackSize(limits.stackBytes)

  const invoke = (method: string, ...args: QuickJSHandle[]) =>
    ctx.callFunction(ctx.getProp(driver, method), driver, args)

  ctx.unwrapResult(
    invoke(
      'setup',
      ...call.seedWords.map((w) => ctx.newNumber(w)),
      ctx.newNumber(call.now),
      ctx.newString(call.requestJson),
    ),
  )

  inst.metering = true
  const used = () => Math.min(inst.fuel, limits.fuel)
  const stopped = (): EngineResult | undefined => {
    if (inst.fatal === undefined) return undefined
    const detail = inst.fatal === 'FUEL_EXHAUSTED' ? `${limits.fuel} ticks` : undefined
    return { ok: false, error: fail(inst.fatal, detail), fuel: used(), logs: inst.logs }
  }
  // An out-of-memory can surface as a mere rejection of a promise nobody awaits, or as a thrown
  // `null`; a call that failed after its WebAssembly memory reached the cap is reported as
  // MEMORY_LIMIT whatever shape the failure took (the memory only grows, so this is deterministic).
  const err = (code: ErrorCode, detail?: string): EngineResult => {
    const oom =
      (code === 'USER_ERROR' || code === 'NEVER_SETTLED' || code === 'INVALID_CODE') && nearCap(inst)
    return {
      ok: false,
      error: oom ? fail('MEMORY_LIMIT') : fail(code, detail),
      fuel: used(),
      logs: inst.logs,
    }
  }
  /** Maps the driver's one-letter verdict on a thrown value to a result. */
  const verdict = (text: string, otherwise: ErrorCode): EngineResult => {
    if (text === 'm') return err('MEMORY_LIMIT')
    if (text === 's') return err('STACK_OVERFLOW')
    return err(otherwise, text.slice(1))
  }
  /** Runs queued jobs until the awaited promise settles; returns an error a job could not catch. */
  const drive = (isPending: () => boolean): QuickJSHandle | undefined => {
    while (inst.fatal === undefined && isPending() && rt.hasPendingJob()) {
      const r = rt.executePendingJobs(64)
      if (r.error !== undefined) return r.error
    }
    return undefined
  }
  const describe = (handle: QuickJSHandle): string => {
    const r = invoke('describeLoadError', handle)
    return r.error !== undefined ? 'ethe error could not be described' : ctx.getString(r.value)
  }

  try {
    // ---- load the bundle
    const loaded = ctx.evalCode(call.code, 'bundle.js', { type: 'module' })
    const halted = stopped()
    if (halted !== undefined) return halted
    if (loaded.error !== undefined) return stopped() ?? verdict(describe(loaded.error), 'INVALID_CODE')
    let ns = loaded.value
    if (ctx.getPromiseState(ns).type === 'pending') {
      const jobError = drive(() => ctx.getPromiseState(ns).type === 'pending')
      if (stopped() !== undefined) return stopped()!
      if (jobError !== undefined) return verdict(describe(jobError), 'INVALID_CODE')
    }
    const state = ctx.getPromiseState(ns)
    if (stopped() !== undefined) return stopped()!
    if (state.type === 'pending') return err('INVALID_CODE', 'top-level await never settled')
    if (state.type === 'rejected') return verdict(describe(state.error), 'INVALID_CODE')
    ns = state.value

    // ---- call the export
    const called = invoke('call', ns, ctx.newString(call.exportName), ctx.newString(call.argsJson))
    if (stopped() !== undefined) return stopped()!
    if (called.error !== undefined) return verdict(describe(called.error), 'USER_ERROR')
    if (ctx.getString(called.value) === 'n') {
      return err('NO_SUCH_EXPORT', `the bundle has no function export named "${call.exportName}"`)
    }
    const pending = () => {
      const p = invoke('pending')
      return p.error === undefined && ctx.typeof(p.value) === 'boolean' && ctx.dump(p.value) === true
    }
    for (;;) {
      const jobError = drive(pending)
      if (stopped() !== undefined) return stopped()!
      if (jobError !== undefined) return verdict(describe(jobError), 'USER_ERROR')
      if (!pending()) break
      // no job left and still pending: only the host's answers can move the call on
      const batch = inst.effects.takeReads()
      if (batch.length === 0 || host === undefined) break
      inst.metering = false
      const reply = await host.read(batch.map(({ ns, key }) => ({ ns, key })))
      if ('error' in reply) return { ok: false, error: reply.error, fuel: used(), logs: inst.logs }
      inst.metering = true
      for (let i = 0; i < batch.length; i++) {
        const answer = inst.effects.deliver(batch[i].n, reply.answers[i])
        chargeMoved(inst)
        const settled = invoke('settleRead', ctx.newNumber(batch[i].n), ctx.newString(answer))
        if (stopped() !== undefined) return stopped()!
        if (settled.error !== undefined) return verdict(describe(settled.error), 'USER_ERROR')
      }
    }

    // ---- read the outcome
    const finished = invoke('finish', ctx.newNumber(limits.outputBytes))
    if (stopped() !== undefined) return stopped()!
    if (finished.error !== undefined) return verdict(describe(finished.error), 'USER_ERROR')
    const text = ctx.getString(finished.value)
    const kind = text[0]
    if (kind === 'p') return err('NEVER_SETTLED')
    if (kind === 'o') return err('OUTPUT_TOO_LARGE', `more than ${limits.outputBytes} bytes`)
    if (kind !== 'v') return verdict(text, 'USER_ERROR')
    const json = text.slice(1)
    if (Buffer.byteLength(json) > limits.outputBytes) {
      return err('OUTPUT_TOO_LARGE', `more than ${limits.outputBytes} bytes`)
    }
    const value: unknown = JSON.parse(json)
    const effects = inst.effects.result()
    // a call that read, wrote and enqueued nothing has the result (and hash) it always had
    if (effects === undefined) return { ok: true, value, fuel: used(), logs: inst.logs }
    return { ok: true, value, fuel: used(), logs: inst.logs, effects }
  } catch (e) {
    return caught(inst, e, used())
  }
}
