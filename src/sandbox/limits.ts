import { z } from 'zod'

const MiB = 1024 * 1024

/**
 * Bounds on every limit a call may ask for. They keep a hostile caller from asking a node for an
 * unbounded amount of work, and keep each limit inside what the engine can enforce (the WebAssembly
 * memory cannot start below 16 MiB; a QuickJS stack above 1 MiB can overflow the worker's native
 * stack before QuickJS notices).
 */
export const sandboxLimitsSchema = z
  .object({
    /** Interrupt ticks (one tick ≈ 10 000 QuickJS steps: calls and loop iterations). @default 2000 */
    fuel: z.number().int().min(1).max(1_000_000_000),
    /** Largest WebAssembly memory of one call, engine included. @default 64 MiB */
    memoryBytes: z
      .number()
      .int()
      .min(16 * MiB)
      .max(1024 * MiB),
    /** QuickJS stack limit. @default 512 KiB */
    stackBytes: z
      .number()
      .int()
      .min(32 * 1024)
      .max(1 * MiB),
    /** Wall clock, enforced by terminating the worker. @default 5000 */
    timeoutMs: z.number().int().min(10).max(600_000),
    /** Serialized (JSON, UTF-8) result. @default 1 MiB */
    outputBytes: z
      .number()
      .int()
      .min(16)
      .max(64 * MiB),
    /** Total log volume (UTF-8 bytes plus one per line). @default 64 KiB */
    logBytes: z
      .number()
      .int()
      .min(0)
      .max(16 * MiB),
    /** Serialized (JSON, UTF-8) arguments. @default 1 MiB */
    argsBytes: z
      .number()
      .int()
      .min(2)
      .max(64 * MiB),
    /** Bundle source text (UTF-8). @default 5 MiB */
    bundleBytes: z
      .number()
      .int()
      .min(1)
      .max(64 * MiB),
  })
  .strict()
  .partial()

export interface SandboxLimits {
  /** deterministic interrupt ticks; the default is about one second of sandbox work */
  fuel: number
  memoryBytes: number
  stackBytes: number
  timeoutMs: number
  outputBytes: number
  logBytes: number
  argsBytes: number
  bundleBytes: number
}

/**
 * Defaults, tuned by measurement: on the reference machine a tight loop runs ≈1300–2000 ticks
 * per second, so 2000 ticks is about one second of work (see docs/functions.md).
 */
export const DEFAULT_LIMITS: Readonly<SandboxLimits> = Object.freeze({
  fuel: 2000,
  memoryBytes: 64 * MiB,
  stackBytes: 512 * 1024,
  timeoutMs: 5000,
  outputBytes: 1 * MiB,
  logBytes: 64 * 1024,
  argsBytes: 1 * MiB,
  bundleBytes: 5 * MiB,
})

/** Fills in defaults: the call's limits win over the pool's, which win over {@link DEFAULT_LIMITS}. */
export function resolveLimits(...layers: Array<Partial<SandboxLimits> | undefined>): SandboxLimits {
  const out: SandboxLimits = { ...DEFAULT_LIMITS }
  for (const layer of layers) {
    if (layer === undefined) continue
    for (const [k, v] of Object.entries(layer)) {
      if (v !== undefined) (out as unknown as Record<string, number>)[k] = v
    }
  }
  return out
}
