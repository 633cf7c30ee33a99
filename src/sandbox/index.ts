/**
 * The sandbox: runs one export of a function bundle on JSON arguments, deterministically, in
 * QuickJS compiled to WebAssembly, under fuel, memory, stack, wall-clock, output and log limits,
 * on a pool of worker threads so no call can stall the node.
 *
 * Every outcome is a {@link SandboxResult}; `run` never rejects for anything the code does. For
 * the same call (code, export, args, seed, now, request, limits) and the same answers to its
 * reads, the result — value, logs, error, fuel and effects — is byte-identical in any worker, any
 * process and any time zone or locale; only TIMEOUT, SANDBOX_CRASHED and INTERNAL (a host that
 * failed a read) depend on the host. "The same" includes the sandbox itself: {@link SANDBOX_BUILD}
 * names the prelude, QuickJS build and engine rules that ran a call.
 *
 * A function reads a datastore with `await ctx.store.get(ns, key)`, answered by the call's `read`
 * ({@link StoreReader}), and records writes (`ctx.store.put`, `ctx.store.delete`) and jobs
 * (`ctx.enqueue`) within {@link EFFECT_LIMITS}; a successful result carries them as `effects`
 * ({@link SandboxEffects}), which take effect only once a quorum certificate over them is committed.
 *
 * @example
 * ```ts
 * import { createSandbox } from '../sandbox/index.ts'
 *
 * const sandbox = createSandbox({ workers: 2 })
 * const result = await sandbox.run({
 *   code: 'export function greet(name, ctx) { ctx.log("hi"); return `hello ${name}` }',
 *   exportName: 'greet',
 *   args: ['ada'],
 *   seed: 'request-id',
 *   now: Date.UTC(2025, 0, 1),
 * })
 * // result: { ok: true, value: 'hello ada', fuel: 0, logs: ['hi'] }
 *
 * const counted = await sandbox.run({
 *   code: `export async function f(ns, ctx) {
 *     const n = (await ctx.store.get(ns, 'n')) ?? 0; ctx.store.put(ns, 'n', n + 1); return n + 1 }`,
 *   exportName: 'f',
 *   args: [ns],
 *   seed: 'request-id',
 *   now: Date.UTC(2025, 0, 1),
 *   read: localReader({ [ns]: { n: 41 } }),
 * })
 * // counted: { ok: true, value: 42, fuel: 0, logs: [], effects: { reads: [{ ns, key: 'n', version: 1 }],
 * //   writes: [{ ns, key: 'n', value: 42 }], jobs: [] } }
 * await sandbox.stop()
 * ```
 */
export { ENGINE_VERSION, SANDBOX_BUILD } from './build.ts'
export { dagCborSize, EFFECT_LIMITS, isCidText, keyProblem } from './effects.ts'
export {
  DEFAULT_LIMITS,
  LIMIT_RANGES,
  type LimitOverrides,
  limitOverridesSchema,
  type SandboxLimits,
  sandboxLimitsSchema,
} from './limits.ts'
export {
  createSandbox,
  type Sandbox,
  type SandboxCall,
  type SandboxInit,
  type SandboxStats,
  sandboxCallSchema,
} from './pool.ts'
export {
  type LocalStore,
  LocalStoreSchema,
  localReader,
  READ_ERRORS_REFUSED,
  type StoreReadAnswer,
  type StoreReader,
} from './reads.ts'
export {
  type EffectJob,
  EffectJobSchema,
  type JobOptions,
  JobOptionsSchema,
  type SandboxEffects,
  SandboxEffectsSchema,
  type SandboxResult,
} from './result.ts'
