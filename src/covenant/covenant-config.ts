import { type Document, LineCounter, parseDocument, stringify } from 'yaml'
import { z } from 'zod'
import { TagSchema } from '../content/index.ts'
import { CovenantError } from '../errors/index.ts'
import { KeyIdSchema } from '../keys/index.ts'
import { LIMIT_RANGES } from '../sandbox/index.ts'
import { amountSchema, formatAmount } from './money.ts'

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB
const TiB = 1024 * GiB

/** The largest `store.maxBytes` accepted: 1 PiB, far above any one node, well inside 2^53. */
export const MAX_STORE_BYTES = 1024 * TiB

/**
 * What one call may use unless the covenant lowers it: everything the sandbox can enforce for fuel
 * (its deterministic ticks; the wall clock bounds the work anyway), and the sandbox's defaults for
 * memory and wall clock, so a default covenant accepts a default request.
 */
const { fuel, memoryBytes, timeoutMs, outputBytes } = LIMIT_RANGES
export const DEFAULT_MAX_FUEL = fuel.max

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
  kib: KiB,
  mib: MiB,
  gib: GiB,
  tib: TiB,
}

/** Parses `512MiB`, `1GiB`, `1.5 GB`, `1048576`; `undefined` if it is none of those. */
export function parseByteSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text)
  if (m === null) return undefined
  const unit = UNITS[m[2].toLowerCase()]
  if (unit === undefined) return undefined
  return Math.floor(Number(m[1]) * unit)
}

/** The shortest exact binary-unit spelling of a byte count (`1073741824` → `1GiB`). */
export function formatByteSize(bytes: number): string | number {
  for (const [unit, size] of [
    ['TiB', TiB],
    ['GiB', GiB],
    ['MiB', MiB],
    ['KiB', KiB],
  ] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${unit}`
  }
  return bytes
}

const ByteSizeSchema = z
  .union([z.number(), z.string()])
  .transform((v, ctx) => {
    if (typeof v === 'number') return v
    const n = parseByteSize(v)
    if (n === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `not a byte size: ${JSON.stringify(v)} (write a number of bytes, or e.g. "512MiB", "1GiB")`,
      })
      return z.NEVER
    }
    return n
  })
  .pipe(z.number().int().min(0).max(MAX_STORE_BYTES))

/** Publishers are named by canonical key ids, so a list compares as strings (one key, one spelling). */
const PublisherSchema = KeyIdSchema

/**
 * Price bounds, in nano-credits (see money.ts). They keep the largest charge one call or one block
 * can incur far inside 2^53: a call at the most fuel and the highest prices costs about 10^15 ncr.
 */
export const MAX_PRICES = Object.freeze({
  basePrice: 1_000_000_000_000,
  pricePerFuel: 1_000_000,
  pricePerBytePerDay: 1_000_000,
  pricePerByte: 1_000_000,
  credit: 1_000_000_000_000_000,
})

const StoreSchema = z.strictObject({
  /** Whether the node stores other people's blocks at all. */
  enabled: z.boolean().default(true),
  /** The most bytes of blocks the node keeps. */
  maxBytes: ByteSizeSchema.default(GiB),
  /** Content with any of these tags is neither stored nor served. */
  refusedTags: z.array(TagSchema).max(1024).default([]),
  /** ncr owed by a block's publisher per byte held per (UTC) day: 1 GiB for a day ≈ 1.07 cr. */
  pricePerBytePerDay: amountSchema(MAX_PRICES.pricePerBytePerDay).default(1),
  /** Days a publisher past its credit has to pay before this node may drop its blocks. */
  noticeDays: z.number().int().min(0).max(365).default(7),
})

const ServeSchema = z.strictObject({
  /** ncr owed by a reader per byte of block served; free by default, as reading is on IPFS. */
  pricePerByte: amountSchema(MAX_PRICES.pricePerByte).default(0),
})

const ExecuteSchema = z.strictObject({
  /** Off unless the operator says so: running other people's code is opt-in. */
  enabled: z.boolean().default(false),
  /** Bounded by what the sandbox can enforce, like the two below. */
  maxFuel: z.number().int().min(fuel.min).max(fuel.max).default(DEFAULT_MAX_FUEL),
  maxMemoryMiB: z
    .number()
    .int()
    .min(memoryBytes.min / MiB)
    .max(memoryBytes.max / MiB)
    .default(memoryBytes.default / MiB),
  maxWallClockMs: z.number().int().min(timeoutMs.min).max(timeoutMs.max).default(timeoutMs.default),
  /**
   * The largest output a request may ask for, in MiB. Above 1 MiB an output is stored as blocks in
   * the content network (by this node, once per output) and travels as their CID.
   */
  maxOutputMiB: z
    .number()
    .int()
    .min(1)
    .max(outputBytes.max / MiB)
    .default(16),
  concurrency: z.number().int().min(1).max(256).default(2),
  /**
   * ncr charged for every certified call whatever its fuel: a small call reports 0 fuel (a tick
   * is ≈ 10 000 QuickJS steps) and still costs the executor a request check, a run and a
   * signature, about ten ticks of work.
   */
  basePrice: amountSchema(MAX_PRICES.basePrice).default(10_000),
  /** ncr per unit of fuel the receipt signs for (0.000001 cr: the price before payments). */
  pricePerFuel: amountSchema(MAX_PRICES.pricePerFuel).default(1000),
  refusedTags: z.array(TagSchema).max(1024).default([]),
  /** Empty means anyone not refused. */
  allowedPublishers: z.array(PublisherSchema).max(1024).default([]),
  refusedPublishers: z.array(PublisherSchema).max(1024).default([]),
})

/** The operator's `covenant.yaml`; every default is written here and only here. */
export const CovenantConfigSchema = z.strictObject({
  statement: z.string().max(4096).default(''),
  store: StoreSchema.prefault({}),
  serve: ServeSchema.prefault({}),
  execute: ExecuteSchema.prefault({}),
  /**
   * ncr a caller (or publisher) this node knows nothing about may owe it before paying: the most
   * such a stranger can walk away with. 0.01 cr is about five default calls of a second each.
   */
  credit: amountSchema(MAX_PRICES.credit).default(10_000_000),
})

export type CovenantConfig = z.output<typeof CovenantConfigSchema>
/** What an operator may write: every field optional, `maxBytes` may be a string. */
export type CovenantConfigInput = z.input<typeof CovenantConfigSchema>

/** One mistake in a covenant file, where it is. */
export interface CovenantIssue {
  path: string
  line: number
  col: number
  message: string
}

const MAX_COVENANT_TEXT = 1024 * 1024

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = ''
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`
  return out === '' ? '(root)' : out
}

interface Ranged {
  range?: [number, number, number] | null
}

/** The source offset of the node at `path`, or of its nearest existing ancestor. */
function offsetOf(doc: Document, path: ReadonlyArray<PropertyKey>, key?: string): number {
  for (let depth = path.length; depth >= 0; depth--) {
    const sub = path.slice(0, depth)
    const node = (sub.length === 0 ? doc.contents : doc.getIn(sub, true)) as
      | (Ranged & { items?: Array<{ key?: Ranged & { value?: unknown } }> })
      | null
      | undefined
    if (node === null || node === undefined || typeof node !== 'object') continue
    if (key !== undefined && depth === path.length && Array.isArray(node.items)) {
      const pair = node.items.find((p) => p.key?.value === key)
      if (pair?.key?.range) return pair.key.range[0]
    }
    if (node.range) return node.range[0]
  }
  return 0
}

function invalid(file: string, issues: CovenantIssue[]): CovenantError {
  const lines = issues.map((i) => `${file}:${i.line}:${i.col}: ${i.path}: ${i.message}`)
  const message =
    lines.length === 1
      ? `invalid covenant: ${lines[0]}`
      : `invalid covenant (${lines.length} mistakes):\n  ${lines.join('\n  ')}`
  return new CovenantError('COVENANT_INVALID', message, { details: issues })
}

/**
 * Parses and validates a covenant file. Each mistake is reported with its field path and its line
 * and column in `text`.
 */
export function parseCovenantYaml(text: string, file = 'covenant.yaml'): CovenantConfig {
  if (text.length > MAX_COVENANT_TEXT)
    throw new CovenantError('COVENANT_INVALID', `${file}: larger than ${MAX_COVENANT_TEXT} characters`)
  const lineCounter = new LineCounter()
  // logLevel 'error': a map key the file writes as a collection is reported below as an unknown
  // field, not also as a Node process warning addressed to developers
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, logLevel: 'error' })
  if (doc.errors.length > 0) {
    throw invalid(
      file,
      doc.errors.map((e) => {
        const { line, col } = lineCounter.linePos(e.pos[0])
        return { path: '(yaml)', line, col, message: `YAML syntax: ${e.message.split('\n')[0]}` }
      }),
    )
  }
  let value: unknown
  try {
    // A small alias budget stops "billion laughs" documents from expanding without bound.
    value = doc.toJS({ maxAliasCount: 100 }) ?? {}
  } catch (err) {
    throw new CovenantError('COVENANT_INVALID', `${file}: ${(err as Error).message}`, { cause: err })
  }
  const parsed = CovenantConfigSchema.safeParse(value)
  if (parsed.success) return parsed.data
  const issues: CovenantIssue[] = []
  for (const issue of parsed.error.issues) {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [undefined]
    for (const key of keys) {
      const { line, col } = lineCounter.linePos(offsetOf(doc, issue.path, key))
      const path = key === undefined ? issue.path : [...issue.path, key]
      const message = key === undefined ? issue.message : 'unknown field'
      issues.push({ path: formatPath(path), line, col, message })
    }
  }
  throw invalid(file, issues)
}

/** Reads and parses a covenant file; NOT_FOUND if it does not exist. */
export async function loadCovenantFile(path: string): Promise<CovenantConfig> {
  // imported here so the covenant part loads in a browser, where only this function needs Node
  const { readFile } = await import('node:fs/promises')
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'NOT_FOUND' : 'COVENANT_INVALID'
    throw new CovenantError(code, `cannot read covenant file ${path}: ${(err as Error).message}`, {
      cause: err,
    })
  }
  return parseCovenantYaml(text, path)
}

/** The covenant of a node whose operator wrote nothing: stores, serves, never executes. */
// the schema's defaults, as an empty file parses to; not by parsing '' here, which would pull the
// YAML parser into every browser bundle that touches a covenant
export const DEFAULT_COVENANT: CovenantConfig = CovenantConfigSchema.parse({})

/** Writes a config as YAML that {@link parseCovenantYaml} reads back to an equal config. */
export function covenantToYaml(config: CovenantConfig): string {
  const c = CovenantConfigSchema.parse(config)
  return stringify({
    ...c,
    store: {
      ...c.store,
      maxBytes: formatByteSize(c.store.maxBytes),
      pricePerBytePerDay: formatAmount(c.store.pricePerBytePerDay),
    },
    serve: { pricePerByte: formatAmount(c.serve.pricePerByte) },
    execute: {
      ...c.execute,
      basePrice: formatAmount(c.execute.basePrice),
      pricePerFuel: formatAmount(c.execute.pricePerFuel),
    },
    credit: formatAmount(c.credit),
  })
}
