/**
 * The divergence report of a failed quorum: which executor signed which output, and where the
 * outputs first differ, so a function's author can find the non-determinism (a `Date.now()` read
 * through a host API, an iteration order, a race between promises). Pure: no clock, no I/O.
 */
import { z } from 'zod'
import { type OutputLike, outputHash, outputValue } from '../exec/index.ts'

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
      /**
       * the reference's value at `path` (JSON, shortened), or `(absent)`; where only the key order
       * differs, the object's keys in order with their values elided (`{"a":…,"b":…}`); where only
       * the JSON text differs (`1.0` and `1`), the text
       */
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

/** Where two values differ: `a` and `b` are their values at `path`, or with `order`, the two objects there. */
export interface Difference {
  path: string
  a: unknown
  b: unknown
  /** the objects at `path` hold equal values under the same keys, in another order */
  order?: true
}

function sameOrder(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((key, i) => b[i] === key)
}

type Step = { a: unknown; b: unknown; path: string } | { found: Difference }

/**
 * The first JSON path at which `a` and `b` differ, depth first in `a`'s order (its keys as they
 * come, then keys only `b` has); `undefined` if they are equal. A side that lacks the key or index
 * is `undefined` in the answer. Key order counts, as it does in the output hash (the JSON text is
 * hashed as it is): objects with equal values under the same keys in another order differ at
 * their own path, with `order` set. Iterative: an output is at most 256 levels deep, but a walker
 * of hostile input keeps its own stack anyway.
 */
export function firstDifference(a: unknown, b: unknown, root = '$'): Difference | undefined {
  const stack: Step[] = [{ a, b, path: root }]
  while (stack.length > 0) {
    const next = stack.pop()!
    if ('found' in next) return next.found
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
      const keysA = Object.keys(oa)
      const keysB = Object.keys(ob)
      // Under the values, so it is reached only if every value (and so every key) matched.
      if (!sameOrder(keysA, keysB)) stack.push({ found: { path: next.path, a: oa, b: ob, order: true } })
      const keys = [...keysA, ...keysB.filter((key) => !Object.hasOwn(oa, key))]
      for (let i = keys.length - 1; i >= 0; i--) {
        const key = keys[i]
        // An absent key reads as undefined, which no JSON value is: a difference at that key.
        const a = Object.hasOwn(oa, key) ? oa[key] : undefined
        const b = Object.hasOwn(ob, key) ? ob[key] : undefined
        stack.push({ a, b, path: childPath(next.path, key) })
      }
    } else if (!Object.is(next.a, next.b)) return next
  }
  return undefined
}

function shorten(text: string): string {
  return text.length > SNIPPET_CHARS ? `${text.slice(0, SNIPPET_CHARS - 1)}…` : text
}

function snippet(v: unknown): string {
  if (v === undefined) return '(absent)'
  return shorten(JSON.stringify(v) ?? String(v))
}

/** An object's keys in their order, values elided: `{"b":…,"a":…}`. */
function keyOrder(v: unknown): string {
  return shorten(
    `{${Object.keys(v as object)
      .map((key) => `${JSON.stringify(key)}:…`)
      .join(',')}}`,
  )
}

/** The parts of an output in the order a reader looks for a cause: did it fail, what did it return, what did it log. */
function comparable(output: OutputLike): Record<string, unknown> {
  const error = output.error == null ? null : { code: output.error.code, message: output.error.message }
  return { error, value: outputValue(output), logs: [...output.logs] }
}

/** Where `other` first departs from `reference`, as the report shows it; `undefined` if nowhere. */
function differenceOf(
  reference: OutputLike,
  other: OutputLike,
): { path: string; expected: string; actual: string } | undefined {
  const a = comparable(reference)
  const b = comparable(other)
  for (const part of ['error', 'value', 'logs'] as const) {
    const d = firstDifference(a[part], b[part], `$.${part}`)
    if (d?.order) return { path: d.path, expected: keyOrder(d.a), actual: keyOrder(d.b) }
    if (d !== undefined) return { path: d.path, expected: snippet(d.a), actual: snippet(d.b) }
  }
  // Equal values in other texts (`1.0` and `1`, spaces): not what the sandbox writes, but a text
  // an executor signed all the same, and the texts are what differs.
  if (reference.json !== other.json)
    return { path: '$.value', expected: shorten(reference.json ?? ''), actual: shorten(other.json ?? '') }
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
      outputValue(output)
    } catch {
      continue // not an output any executor writes: it cannot be hashed, or its text is not JSON
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
    // Outputs under different hashes always differ somewhere: in a part, or in the JSON text.
    const d = differenceOf(referenceOutput, output)
    if (d !== undefined) differences.push({ outputHash: hash, ...d })
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
