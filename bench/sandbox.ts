/**
 * Sandbox benchmark: cold start, warm call latency, calls per second across the pool (restoring
 * instances from their snapshot, and building a fresh one per call), and the cost of fuel
 * counting — each beside a baseline in the same run (the same function called directly in V8, and
 * through node:vm). Prints a table and writes bench/results/sandbox-*.json.
 *
 *   npm run bench:sandbox
 */
import { readFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { availableParallelism } from 'node:os'
import vm from 'node:vm'
import variant from '@jitl/quickjs-wasmfile-release-sync'
import { newQuickJSWASMModuleFromVariant, newVariant, type QuickJSSyncVariant } from 'quickjs-emscripten-core'
import { cidForBytes } from '../src/content/index.ts'
import { createSandbox, SANDBOX_BUILD, type StoreReader } from '../src/sandbox/index.ts'
import { writeResults } from './report.ts'

const FN = 'function work(n) { let a = 0; for (let i = 0; i < n; i++) a = (a + i * 7) % 1000003; return a }'
const MODULE = `${FN}\nexport function f(n) { return work(n) }`
const SMALL = 100
const BIG = 2_000_000
const now = Date.UTC(2025, 0, 1)
const started = performance.now()

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
function timeSync(n: number, fn: () => void): number {
  const xs: number[] = []
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    fn()
    xs.push(performance.now() - t)
  }
  return median(xs)
}
async function timeAsync(n: number, fn: () => Promise<unknown>): Promise<number> {
  const xs: number[] = []
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    await fn()
    xs.push(performance.now() - t)
  }
  return median(xs)
}

// ---- baselines
const direct = new Function(`${FN}; return work`)() as (n: number) => number
const vmScript = new vm.Script(`${FN}; work(N)`)
const vmColdMs = timeSync(20, () => {
  const c = vm.createContext({ N: SMALL })
  new vm.Script(`${FN}; work(N)`).runInContext(c)
})
const vmCtx = vm.createContext({ N: SMALL })
const vmWarmMs = timeSync(200, () => vmScript.runInContext(vmCtx))
const directWarmMs = timeSync(200, () => direct(SMALL))

// ---- sandbox cold start: a new pool (worker, WebAssembly instance, context, module) to first result
const coldPoolMs = await timeAsync(3, async () => {
  const sb = createSandbox({ workers: 1 })
  await sb.run({ code: MODULE, exportName: 'f', args: [SMALL], seed: 's', now })
  await sb.stop()
})

const sandbox = createSandbox({ workers: Math.max(1, availableParallelism()) })
await sandbox.run({ code: MODULE, exportName: 'f', args: [SMALL], seed: 's', now })
// a new bundle each call: the worker has not seen it, so it is copied and parsed
let unique = 0
const newBundleMs = await timeAsync(30, () =>
  sandbox.run({ code: `${MODULE}\n// ${unique++}`, exportName: 'f', args: [SMALL], seed: 's', now }),
)
const warmMs = await timeAsync(100, () =>
  sandbox.run({ code: MODULE, exportName: 'f', args: [SMALL], seed: 's', now }),
)

// ---- reads: the round trip to the main thread's reader, one read at a time and ten at once
const NS = cidForBytes(new Uint8Array([1]), 'dag-cbor').toString()
const READS = `const NS = '${NS}'
export async function one(ctx) { return ctx.store.get(NS, 'k') }
export async function serial(ctx) { let s = 0; for (let i = 0; i < 10; i++) s += await ctx.store.get(NS, 'k' + i); return s }
export async function batch(ctx) { return Promise.all(Array.from({ length: 10 }, (_, i) => ctx.store.get(NS, 'k' + i))) }`
const read: StoreReader = () => ({ value: 1, version: 1 })
const readCall = (exportName: string) =>
  sandbox.run({ code: READS, exportName, args: [], seed: 's', now, read })
await readCall('one')
const oneReadMs = await timeAsync(100, () => readCall('one'))
const serialReadsMs = await timeAsync(50, () => readCall('serial'))
const batchReadsMs = await timeAsync(50, () => readCall('batch'))

// ---- throughput across the pool
const N = 400
let t = performance.now()
await Promise.all(
  Array.from({ length: N }, (_, i) =>
    sandbox.run({ code: MODULE, exportName: 'f', args: [SMALL], seed: `s${i}`, now }),
  ),
)
const sandboxCps = N / ((performance.now() - t) / 1000)
t = performance.now()
for (let i = 0; i < 20000; i++) direct(SMALL)
const directCps = 20000 / ((performance.now() - t) / 1000)
t = performance.now()
for (let i = 0; i < 2000; i++) vmScript.runInContext(vmCtx)
const vmCps = 2000 / ((performance.now() - t) / 1000)

// ---- the same, building a fresh QuickJS instance for every call instead of restoring one
const freshPool = createSandbox({ workers: Math.max(1, availableParallelism()), freshInstances: true })
await freshPool.run({ code: MODULE, exportName: 'f', args: [SMALL], seed: 's', now })
const freshWarmMs = await timeAsync(100, () =>
  freshPool.run({ code: MODULE, exportName: 'f', args: [SMALL], seed: 's', now }),
)
t = performance.now()
await Promise.all(
  Array.from({ length: N }, (_, i) =>
    freshPool.run({ code: MODULE, exportName: 'f', args: [SMALL], seed: `s${i}`, now }),
  ),
)
const freshCps = N / ((performance.now() - t) / 1000)
await freshPool.stop()

// ---- heavy work, and what fuel counting costs
const heavy = await sandbox.run({
  code: MODULE,
  exportName: 'f',
  args: [BIG],
  seed: 's',
  now,
  limits: { fuel: 1e9 },
})
const heavyMs = await timeAsync(3, () =>
  sandbox.run({ code: MODULE, exportName: 'f', args: [BIG], seed: 's', now, limits: { fuel: 1e9 } }),
)
const directHeavyMs = timeSync(5, () => direct(BIG))
await sandbox.stop()

const require = createRequire(import.meta.url)
const wasm = new WebAssembly.Module(
  await readFile(require.resolve('@jitl/quickjs-wasmfile-release-sync/wasm')),
)
const qjs = await newQuickJSWASMModuleFromVariant(
  newVariant(variant as unknown as QuickJSSyncVariant, { wasmModule: wasm }),
)
function quickjsRun(withHandler: boolean): number {
  const rt = qjs.newRuntime()
  let ticks = 0
  if (withHandler) rt.setInterruptHandler(() => ++ticks > 1e12)
  const ctx = rt.newContext()
  const start = performance.now()
  const r = ctx.evalCode(`${FN}; work(${BIG})`)
  const ms = performance.now() - start
  r.dispose()
  ctx.dispose()
  rt.dispose()
  return ms
}
const noFuelMs = median([quickjsRun(false), quickjsRun(false), quickjsRun(false)])
const fuelMs = median([quickjsRun(true), quickjsRun(true), quickjsRun(true)])

const ticksPerSecond = heavy.fuel / (heavyMs / 1000)
const rows = [
  ['cold start (ms)', coldPoolMs, vmColdMs, 'new pool+worker → first result; vm: new context + compile'],
  ['new bundle call (ms)', newBundleMs, vmColdMs, 'unseen bundle: copy + parse'],
  ['warm call (ms)', warmMs, vmWarmMs, `cached bundle; direct V8: ${directWarmMs.toFixed(4)} ms`],
  ['calls/s, pool', sandboxCps, vmCps, `direct V8: ${Math.round(directCps)}/s`],
  ['call, 1 read (ms)', oneReadMs, warmMs, 'ctx.store.get answered on the main thread vs warm call'],
  ['call, 10 reads in turn (ms)', serialReadsMs, warmMs, 'ten round trips vs warm call'],
  ['call, 10 reads at once (ms)', batchReadsMs, warmMs, 'one batch vs warm call'],
  ['warm call, fresh (ms)', freshWarmMs, warmMs, 'a new instance each call vs restored (baseline)'],
  ['calls/s, pool, fresh', freshCps, sandboxCps, 'a new instance each call vs restored (baseline)'],
  [
    `work(${BIG}) (ms)`,
    heavyMs,
    directHeavyMs,
    `fuel ${heavy.fuel} ticks ⇒ ${Math.round(ticksPerSecond)} ticks/s`,
  ],
  ['fuel counting (ms)', fuelMs, noFuelMs, 'QuickJS with vs without the interrupt handler'],
] as const
console.log(
  `\n${'measure'.padEnd(24)}${'sandbox'.padStart(12)}${'baseline'.padStart(12)}${'ratio'.padStart(10)}  note`,
)
for (const [name, a, b, note] of rows) {
  console.log(
    `${name.padEnd(24)}${a.toFixed(3).padStart(12)}${b.toFixed(3).padStart(12)}${(a / b).toFixed(2).padStart(10)}  ${note}`,
  )
}
const result = {
  // which sandbox was measured: numbers from different builds are not comparable one to one
  sandboxBuild: SANDBOX_BUILD,
  coldPoolMs,
  newBundleMs,
  warmMs,
  sandboxCallsPerSecond: sandboxCps,
  oneReadMs,
  serialReadsMs,
  batchReadsMs,
  freshInstanceWarmMs: freshWarmMs,
  freshInstanceCallsPerSecond: freshCps,
  heavyMs,
  heavyFuel: heavy.fuel,
  ticksPerSecond,
  fuelCountingMs: fuelMs,
  noFuelCountingMs: noFuelMs,
  baselines: {
    vmColdMs,
    vmWarmMs,
    directWarmMs,
    vmCallsPerSecond: vmCps,
    directCallsPerSecond: directCps,
    directHeavyMs,
  },
  totalMs: performance.now() - started,
}
console.log(`\nsandbox build ${SANDBOX_BUILD}`)
console.log(`wrote ${await writeResults('sandbox', result)} (${(result.totalMs / 1000).toFixed(1)} s)`)
