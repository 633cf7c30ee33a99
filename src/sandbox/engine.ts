/**
 * One call in QuickJS, inside a worker thread. Every call gets a fresh WebAssembly instance of
 * QuickJS (from a module compiled once per process), a fresh runtime and a fresh context, so no
 * call sees another's state, memory layout or allocator history: fuel and memory outcomes are
 * byte-identical in any worker. Instantiating costs ≈1–2 ms, so the next instance is built (and
 * the prelude evaluated in it) while the worker is idle, off the critical path.
 *
 * The instance's WebAssembly memory has `maximum = limits.memoryBytes`: in this build QuickJS
 * cannot see malloc_usable_size, so its own memory accounting undercounts by several times
 * (measured: a 64 MiB runtime limit let an array bomb grow the heap to 357 MiB). The bounded
 * WebAssembly memory is the limit that holds; the runtime limit is kept as a first, cheaper stop.
 * Instances are never disposed: after an out-of-memory or an interrupt QuickJS can assert while
 * freeing, and dropping the whole instance frees everything anyway.
 */
import { readFileSync } from 'node:fs'
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
import type { SandboxLimits } from './limits.ts'
import type { SandboxResult } from './result.ts'

const PRELUDE = readFileSync(new URL('./prelude.js', import.meta.url), 'utf8')
const PAGE = 65536
// Emscripten prints its own aborts; the result already says what happened. The loader hands these
// to Emscripten verbatim, but its type does not list them.
const QUIET = { print() {}, printErr() {} } as object as Parameters<typeof newVariant>[1]['emscriptenModule']
const INITIAL_PAGES = 256

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

interface Instance {
  memoryBytes: number
  mem: WebAssembly.Memory
  rt: QuickJSRuntime
  ctx: QuickJSContext
  driver: QuickJSHandle
  logs: string[]
  logBytes: number
  logLimit: number
  fatal: ErrorCode | undefined
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

export interface Engine {
  run(call: EngineCall): Promise<EngineResult>
  /** Builds the next instance now, so the next call does not wait for it. */
  prewarm(memoryBytes: number): Promise<void>
}

export function createEngine(wasmModule: WebAssembly.Module): Engine {
  let next: Promise<Instance> | undefined
  let nextMemory = 0

  async function instantiate(memoryBytes: number): Promise<Instance> {
    const maximum = Math.max(INITIAL_PAGES, Math.ceil(memoryBytes / PAGE))
    const mem = new WebAssembly.Memory({ initial: INITIAL_PAGES, maximum })
    const mod = await newQuickJSWASMModuleFromVariant(
      newVariant(variant as unknown as QuickJSSyncVariant, {
        wasmModule,
        wasmMemory: mem,
        emscriptenModule: QUIET,
      }),
    )
    const rt = mod.newRuntime()
    const ctx = rt.newContext()
    const inst: Instance = {
      memoryBytes,
      mem,
      rt,
      ctx,
      driver: ctx.undefined,
      logs: [],
      logBytes: 0,
      logLimit: 0,
      fatal: undefined,
    }
    rt.setModuleLoader((name) => ({
      error: new Error(
        `the bundle imports "${name}", which the sandbox does not provide (no Node built-ins, files or URLs; bundle npm packages into the function)`,
      ),
    }))
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
    ctx.setProp(ctx.global, '__covenantHost', hostObj)
    inst.driver = ctx.unwrapResult(ctx.evalCode(PRELUDE, 'covenant-prelude.js'))
    return inst
  }

  function take(memoryBytes: number): Promise<Instance> {
    const ready = next !== undefined && nextMemory === memoryBytes ? next : instantiate(memoryBytes)
    next = undefined
    return ready
  }

  return {
    async prewarm(memoryBytes) {
      if (next !== undefined && nextMemory === memoryBytes) return
      nextMemory = memoryBytes
      next = instantiate(memoryBytes)
      await next
    },
    async run(call) {
      const inst = await take(call.limits.memoryBytes)
      try {
        return execute(inst, call)
      } catch (err) {
        return { ...hostFault(inst, err, 0), discardWorker: true }
      }
    },
  }
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

function execute(inst: Instance, call: EngineCall): EngineResult {
  const { rt, ctx, driver } = inst
  const { limits } = call
  inst.logLimit = limits.logBytes
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

  let fuel = 0
  rt.setInterruptHandler(() => {
    fuel++
    if (inst.fatal !== undefined) return true
    if (fuel > limits.fuel) {
      inst.fatal = 'FUEL_EXHAUSTED'
      return true
    }
    return false
  })
  const used = () => Math.min(fuel, limits.fuel)
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
    const jobError = drive(() => {
      const p = invoke('pending')
      return p.error === undefined && ctx.typeof(p.value) === 'boolean' && ctx.dump(p.value) === true
    })
    if (stopped() !== undefined) return stopped()!
    if (jobError !== undefined) return verdict(describe(jobError), 'USER_ERROR')

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
    return { ok: true, value: JSON.parse(json), fuel: used(), logs: inst.logs }
  } catch (e) {
    return { ...hostFault(inst, e, used()), discardWorker: true }
  }
}
