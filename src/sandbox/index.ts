/**
 * The sandbox: runs one export of a function bundle on JSON arguments, deterministically, in
 * QuickJS compiled to WebAssembly, under fuel, memory, stack, wall-clock, output and log limits,
 * on a pool of worker threads so no call can stall the node.
 *
 * Every outcome is a {@link SandboxResult}; `run` never rejects for anything the code does. For
 * the same call (code, export, args, seed, now, request, limits) the result — value, logs, error
 * and fuel — is byte-identical in any worker, any process and any time zone or locale; only
 * TIMEOUT and SANDBOX_CRASHED depend on the host. "The same" includes the sandbox itself:
 * {@link SANDBOX_BUILD} names the prelude, QuickJS build and engine rules that ran a call.
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
export { type LocalStore, LocalStoreSchema, localReader } from './local-store.ts'
export {
  createSandbox,
  READ_ERRORS_REFUSED,
  type Sandbox,
  type SandboxCall,
  type SandboxInit,
  type SandboxStats,
  type StoreReadAnswer,
  type StoreReader,
  sandboxCallSchema,
} from './pool.ts'
export {
  type EffectJob,
  EffectJobSchema,
  type JobOptions,
  JobOptionsSchema,
  type SandboxEffects,
  SandboxEffectsSchema,
  type SandboxResult,
} from './result.ts'
