import { z } from 'zod'

const KiB = 1024
const MiB = 1024 * KiB

/**
 * Every limit of a call: its bounds and its default, written here and nowhere else. The bounds
 * keep a hostile caller from asking a node for an unbounded amount of work, and keep each limit
 * inside what the engine can enforce (the WebAssembly memory cannot start below 16 MiB; a QuickJS
 * stack above 1 MiB can overflow the worker's native stack before QuickJS notices). The defaults
 * are tuned by measurement: on the reference machine a tight loop runs ≈ 1300–7000 ticks per
 * second, so 2000 ticks is about one second of work (see docs/functions.md).
 */
const LIMITS = {
  /** Interrupt ticks (one tick ≈ 10 000 QuickJS steps: calls and loop iterations). */
  fuel: z.number().int().min(1).max(1_000_000_000).default(2000),
  /** Largest WebAssembly memory of one call, engine included. */
  memoryBytes: z
    .number()
    .int()
    .min(16 * MiB)
    .max(1024 * MiB)
    .default(64 * MiB),
  /** QuickJS stack limit. */
  stackBytes: z
    .number()
    .int()
    .min(32 * KiB)
    .max(1 * MiB)
    .default(512 * KiB),
  /** Wall clock, enforced by terminating the worker. */
  timeoutMs: z.number().int().min(10).max(600_000).default(5000),
  /** Serialized (JSON, UTF-8) result. */
  outputBytes: z
    .number()
    .int()
    .min(16)
    .max(64 * MiB)
    .default(1 * MiB),
  /** Total log volume (UTF-8 bytes plus one per line). */
  logBytes: z
    .number()
    .int()
    .min(0)
    .max(16 * MiB)
    .default(64 * KiB),
  /** Serialized (JSON, UTF-8) arguments. */
  argsBytes: z
    .number()
    .int()
    .min(2)
    .max(64 * MiB)
    .default(1 * MiB),
  /** Bundle source text (UTF-8). */
  bundleBytes: z
    .number()
    .int()
    .min(1)
    .max(64 * MiB)
    .default(5 * MiB),
}

type LimitName = keyof typeof LIMITS

/** All limits of a call; parsing `{}` gives the defaults. */
export const sandboxLimitsSchema = z.strictObject(LIMITS)
export type SandboxLimits = z.output<typeof sandboxLimitsSchema>

const overrides = Object.fromEntries(
  Object.entries(LIMITS).map(([name, field]) => [name, field.unwrap().optional()]),
) as { [K in LimitName]: z.ZodOptional<z.ZodNumber> }

/**
 * Some limits, each within its bounds: a pool's or a call's overrides. Without defaults (zod
 * would fill them in even inside `.partial()`), so that an absent limit falls through to the
 * layer below.
 */
export const limitOverridesSchema = z.strictObject(overrides)
export type LimitOverrides = z.output<typeof limitOverridesSchema>

/** The defaults: what `sandboxLimitsSchema` gives for `{}`. */
export const DEFAULT_LIMITS: Readonly<SandboxLimits> = Object.freeze(sandboxLimitsSchema.parse({}))

/** Each limit's bounds and default, read from the schema, for parts that state limits in their own units. */
export const LIMIT_RANGES: Readonly<Record<LimitName, { min: number; max: number; default: number }>> =
  Object.freeze(
    Object.fromEntries(
      Object.entries(LIMITS).map(([name, field]) => {
        const { minValue, maxValue } = field.unwrap()
        return [name, { min: minValue!, max: maxValue!, default: DEFAULT_LIMITS[name as LimitName] }]
      }),
    ) as Record<LimitName, { min: number; max: number; default: number }>,
  )

/**
 * The limits of a call: each layer's limits win over the layers before it, and the schema's
 * defaults fill in the rest. Every layer must already be valid {@link LimitOverrides}.
 */
export function resolveLimits(...layers: Array<LimitOverrides | undefined>): SandboxLimits {
  const merged: LimitOverrides = {}
  for (const layer of layers) {
    for (const [name, value] of Object.entries(layer ?? {})) {
      if (value !== undefined) merged[name as LimitName] = value
    }
  }
  return sandboxLimitsSchema.parse(merged)
}
