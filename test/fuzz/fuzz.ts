/**
 * The fuzz harness: how many cases each target runs, with which seed, and what every target
 * asserts about a refusal. `npm test` runs a short pass with a fixed seed; `npm run fuzz`
 * (scripts/fuzz.ts) runs {@link FULL_RUN} cases over all targets with a fresh seed and prints the
 * cases each target ran.
 *
 * Environment: `FUZZ_RUNS` (cases over all targets, shared out by each target's weight),
 * `FUZZ_SEED` (an integer), `FUZZ_REPORT` (a file each finished target appends a JSON line to).
 */
import { appendFileSync } from 'node:fs'
import fc from 'fast-check'
import { CovenantError, type ErrorCode, isErrorCode } from '../../src/errors/index.ts'

/**
 * Every target and its cases in a full run; they add up to {@link FULL_RUN}, 100 000. Cheap
 * in-process targets take the most; a case over a real stream or through the HTTP server costs
 * more (a protocol case about 150 ms, mostly the exec protocol running the function).
 */
export const TARGETS = {
  // codecs.test.ts: in process
  'covenant-yaml': 12_000,
  'signed-covenant': 5_000,
  manifest: 5_000,
  request: 6_000,
  'receipt-refusal': 5_000,
  certificate: 5_000,
  conflict: 3_000,
  grant: 4_000,
  invocation: 3_000,
  revocation: 3_000,
  'descriptor-read': 4_000,
  'entry-commit': 5_000,
  'cheque-deposit-invoice': 5_000,
  'byte-decoders': 8_000,
  'error-json': 2_000,
  // protocols.test.ts: a real node, a peer over real libp2p streams
  'protocol-requests': 6_000,
  'protocol-framing': 3_000,
  'protocol-replies': 3_000,
  // http.test.ts: a real node's HTTP API
  'http-routes': 10_000,
  'http-raw': 3_000,
} as const satisfies Record<string, number>

export type TargetName = keyof typeof TARGETS

/** The cases of a full run (`npm run fuzz`), over all targets. */
export const FULL_RUN = Object.values(TARGETS).reduce((a, b) => a + b, 0)

/** The cases of the pass `npm test` runs. */
export const SHORT_RUN = 300

/** The seed of the pass `npm test` runs (issue 8: trust that holds). */
export const DEFAULT_SEED = 8

function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const n = Number(raw)
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, not ${JSON.stringify(raw)}`)
  return n
}

export const totalRuns = intFromEnv('FUZZ_RUNS', SHORT_RUN)
export const seed = intFromEnv('FUZZ_SEED', DEFAULT_SEED)

/** The cases `name` runs in this pass: its share of {@link totalRuns}, at least one. */
export function runsOf(name: TargetName): number {
  return Math.max(1, Math.round((TARGETS[name] * totalRuns) / FULL_RUN))
}

/** The target's own seed: the run's seed mixed with its name, so targets draw different cases. */
export function seedOf(name: TargetName): number {
  let h = seed | 0
  for (const ch of name) h = Math.imul(h ^ ch.charCodeAt(0), 0x9e3779b1) | 0
  return h
}

/** A case that takes longer fails (one that hangs would otherwise hold the run for half an hour). */
const CASE_TIMEOUT_MS = 120_000

let escapes: unknown[] | undefined

/** What escaped as an unhandled rejection or uncaught exception since the first target started. */
function escaped(): unknown[] {
  if (escapes === undefined) {
    const seen: unknown[] = []
    process.on('unhandledRejection', (reason) => seen.push(reason))
    process.on('uncaughtException', (err) => seen.push(err))
    escapes = seen
  }
  return escapes
}

/**
 * Runs `property` for the target's share of cases with its seed, then checks nothing escaped as an
 * unhandled rejection or uncaught exception meanwhile; appends what ran to `FUZZ_REPORT`.
 */
export async function fuzz<Ts>(
  t: { diagnostic(message: string): void },
  name: TargetName,
  property: fc.IAsyncProperty<Ts> | fc.IProperty<Ts>,
): Promise<void> {
  const runs = runsOf(name)
  const started = performance.now()
  const before = escaped().length
  await fc.assert(property, {
    numRuns: runs,
    seed: seedOf(name),
    plugins: [fc.timeout(CASE_TIMEOUT_MS)],
  })
  // anything a case set going (a hello, a repair round) has had a turn to fail by now
  await new Promise((resolve) => setImmediate(resolve))
  const after = escaped().slice(before)
  if (after.length > 0)
    throw new Error(`${after.length} error(s) escaped during ${name}: ${describe(after[0])}`)
  const ms = Math.round(performance.now() - started)
  t.diagnostic(`${name}: ${runs} cases in ${ms} ms (seed ${seedOf(name)})`)
  if (process.env.FUZZ_REPORT)
    appendFileSync(process.env.FUZZ_REPORT, `${JSON.stringify({ target: name, runs, seed, ms })}\n`)
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}\n${err.stack ?? ''}` : String(err)
}

/**
 * Fails unless `err` is a CovenantError with a known code other than INTERNAL (which would mean the
 * input reached code that did not expect it), and one of `codes` when given.
 */
export function assertTyped(err: unknown, codes?: readonly ErrorCode[]): asserts err is CovenantError {
  if (!(err instanceof CovenantError))
    throw new Error(`threw something other than a CovenantError: ${describe(err)}`)
  if (!isErrorCode(err.code)) throw new Error(`unknown error code ${String(err.code)}`)
  if (err.code === 'INTERNAL') throw new Error(`bad input became INTERNAL: ${describe(err.cause ?? err)}`)
  if (codes !== undefined && !codes.includes(err.code))
    throw new Error(`refused with ${err.code} (${err.message}), expected one of ${codes.join(', ')}`)
  if (typeof err.message !== 'string' || err.message.length === 0)
    throw new Error(`${err.code} without a message`)
}

/** Runs `fn`: its value, or the typed refusal it threw (anything else fails the case). */
export function outcome<T>(
  fn: () => T,
  codes?: readonly ErrorCode[],
): { ok: true; value: T } | { ok: false; error: CovenantError } {
  try {
    return { ok: true, value: fn() }
  } catch (err) {
    assertTyped(err, codes)
    return { ok: false, error: err }
  }
}

/** {@link outcome} for an async `fn`. */
export async function outcomeOf<T>(
  fn: () => Promise<T>,
  codes?: readonly ErrorCode[],
): Promise<{ ok: true; value: T } | { ok: false; error: CovenantError }> {
  try {
    return { ok: true, value: await fn() }
  } catch (err) {
    assertTyped(err, codes)
    return { ok: false, error: err }
  }
}
