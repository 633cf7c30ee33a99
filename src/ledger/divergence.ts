/**
 * The divergence report of a failed quorum: which executor signed which output, and where the
 * outputs first differ, so a function's author can find the non-determinism (a `Date.now()` read
 * through a host API, an iteration order, a race between promises). Pure: no clock, no I/O.
 */
import { z } from 'zod'
import { type OutputLike, outputHash } from '../exec/index.ts'

/** Characters of each differing value shown; enough to recognise it, never a whole output. */
const SNIPPET_CHARS = 120

export const DivergenceReportSchema = z.strictObject({
  /** every receipt, in the order given: who signed which output hash on which sandbox build */
  executors: z.array(
    z.strictObject({ executor: z.string(), outputHash: z.string(), build: z.string().optional() }),
  ),
  /** output hashes with who signed them, most signers first (ties: first signed first) */
  groups: z.array(z.strictObject({ outputHash: z.string(), executors: z.array(z.string()) })),
  /** the output every other is compared with: the first group's */
  reference: z.string().optional(),
  /** for each other output whose content is known, the first JSON path where it differs */
  differences: z.array(
    z.strictObject({
      outputHash: z.string(),
      path: z.string(),
      /** the reference's value at `path` (JSON, shortened), or `(absent)` */
      expected: z.string(),
      /** this output's value there */
      actual: z.string(),
    }),
  ),
})
export type DivergenceReport = z.infer<typeof DivergenceReportSchema>

/** What the report needs of a receipt. */
export interface SignedOutput {
  executor: string
  outputHash: string
  build?: string
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/

function childPath(path: string, key: string | number): string {
  if (typeof key === 'number') return `${path}[${key}]`
  return IDENTIFIER.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`
}

function kind(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  return typeof v
}

/**
 * The first JSON path at which `a` and `b` differ, depth first; `undefined` if they are equal. A
 * side that lacks the key or index is `undefined` in the answer.
 * Object keys are visited in sorted order, as the output hash (DAG-CBOR) sorts them, so two
 * outputs that differ only in key order are equal here as they are there. Iterative: an output is
 * at most 256 levels deep, but a walker of hostile input keeps its own stack anyway.
 */
export function firstDifference(
  a: unknown,
  b: unknown,
  root = '$',
): { path: string; a: unknown; b: unknown } | undefined {
  const stack: Array<{ a: unknown; b: unknown; path: string }> = [{ a, b, path: root }]
  while (stack.length > 0) {
    const next = stack.pop()!
    const ka = kind(next.a)
    if (ka !== kind(next.b)) return next
    if (ka === 'array') {
      const xa = next.a as unknown[]
      const xb = next.b as unknown[]
      const n = Math.max(xa.length, xb.length)
      // pushed last to first so that index 0 is visited first
      for (let i = n - 1; i >= 0; i--) stack.push({ a: xa[i], b: xb[i], path: childPath(next.path, i) })
    } else if (ka === 'object') {
      const oa = next.a as Record<string, unknown>
      const ob = next.b as Record<string, unknown>
      const keys = [...new Set([...Object.keys(oa), ...Object.keys(ob)])].sort().reverse()
      for (const key of keys) {
        // An absent key reads as undefined, which no JSON value is: a difference at that key.
        const a = Object.hasOwn(oa, key) ? oa[key] : undefined
        const b = Object.hasOwn(ob, key) ? ob[key] : undefined
        stack.push({ a, b, path: childPath(next.path, key) })
      }
    } else if (!Object.is(next.a, next.b)) return next
  }
  return undefined
}

function snippet(v: unknown): string {
  if (v === undefined) return '(absent)'
  const text = JSON.stringify(v) ?? String(v)
  return text.length > SNIPPET_CHARS ? `${text.slice(0, SNIPPET_CHARS - 1)}…` : text
}

/** The parts of an output in the order a reader looks for a cause: did it fail, what did it return, what did it log. */
function comparable(output: OutputLike): Record<string, unknown> {
  const error = output.error == null ? null : { code: output.error.code, message: output.error.message }
  return { error, value: output.value ?? null, logs: [...output.logs] }
}

function differenceOf(
  reference: OutputLike,
  other: OutputLike,
): { path: string; a: unknown; b: unknown } | undefined {
  const a = comparable(reference)
  const b = comparable(other)
  for (const part of ['error', 'value', 'logs'] as const) {
    const d = firstDifference(a[part], b[part], `$.${part}`)
    if (d !== undefined) return d
  }
  return undefined
}

/**
 * Builds the divergence report of a failed quorum from the receipts collected (`receipts`, each
 * signed by its executor) and the outputs that came with them (`outputs`, matched to receipts by
 * their hash; an output no receipt names is ignored, a receipt whose output is missing is listed
 * without a path). The reference is the output most executors signed.
 *
 * @example
 * ```ts
 * divergenceReport(receipts, outputs).differences
 * // [{ outputHash: 'b1…', path: '$.value.rolledAt', expected: '1718000000000', actual: '1718000000004' }]
 * ```
 */
export function divergenceReport(
  receipts: readonly SignedOutput[],
  outputs: readonly OutputLike[],
): DivergenceReport {
  const byHash = new Map<string, OutputLike>()
  for (const output of outputs) {
    let hash: string
    try {
      hash = outputHash(output)
    } catch {
      continue // not an output any receipt can name
    }
    if (!byHash.has(hash)) byHash.set(hash, output)
  }
  const groups = new Map<string, string[]>()
  for (const r of receipts) {
    const group = groups.get(r.outputHash) ?? []
    if (!group.includes(r.executor)) group.push(r.executor)
    groups.set(r.outputHash, group)
  }
  // Map order is first-signed order; a stable sort keeps it among equal counts.
  const ordered = [...groups].sort((x, y) => y[1].length - x[1].length)
  const reference = ordered[0]?.[0]
  const referenceOutput = reference === undefined ? undefined : byHash.get(reference)
  const differences: DivergenceReport['differences'] = []
  for (const [hash] of ordered.slice(1)) {
    const output = byHash.get(hash)
    if (referenceOutput === undefined || output === undefined) continue
    const d = differenceOf(referenceOutput, output)
    // Equal parts under different hashes cannot happen for outputs that hash to their receipts.
    if (d !== undefined)
      differences.push({ outputHash: hash, path: d.path, expected: snippet(d.a), actual: snippet(d.b) })
  }
  return {
    executors: receipts.map((r) =>
      r.build === undefined
        ? { executor: r.executor, outputHash: r.outputHash }
        : { executor: r.executor, outputHash: r.outputHash, build: r.build },
    ),
    groups: ordered.map(([outputHash, executors]) => ({ outputHash, executors })),
    ...(reference === undefined ? {} : { reference }),
    differences,
  }
}
