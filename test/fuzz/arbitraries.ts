/**
 * Generators for the fuzz targets: strings with unicode edge cases, JSON values, DAG-CBOR values
 * (CIDs, bytes, huge integers, floats, nesting), CBOR-shaped garbage, and — most productive —
 * mutations of real signed messages: a field dropped, added, replaced, retyped, reordered, nested
 * or inflated, a bit or a byte flipped.
 */
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'

/** Strings careless and hostile senders write: control and format characters, lone surrogates, prototype names, near-misses of ids. */
const EDGE_STRINGS = [
  '',
  ' ',
  '\u0000',
  '\n',
  '\r\n',
  '\t',
  '\uD800',
  '\uDFFF',
  '\uFEFF',
  '\uFFFE',
  '\u202E',
  '\u200B',
  'e\u0301',
  'Å',
  '🂡',
  '👩‍👩‍👧',
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  'NaN',
  '-0',
  '1e309',
  '0x10',
  '%',
  '%zz',
  '%00',
  '%2F',
  '..',
  '../..',
  '/',
  '//',
  '?',
  '#',
  '*',
  '&',
  '12D3KooW',
  'bafy',
  'bafkrei',
  'k51qzi5uqu5',
  'Qm',
  'did:key:z6Mk',
  'null',
  'true',
  '{}',
  '[]',
  "'; DROP TABLE blocks; --",
]

export const edgeString = fc.constantFrom(...EDGE_STRINGS)

/** A short string, weighted towards the edge cases. */
export const shortText: fc.Arbitrary<string> = fc.oneof(
  { weight: 5, arbitrary: fc.string({ unit: 'binary', maxLength: 24 }) },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 12 }) },
  { weight: 3, arbitrary: edgeString },
)

/** Any string, weighted towards the edge cases; now and then a huge one. */
export const text: fc.Arbitrary<string> = fc.oneof(
  { weight: 11, arbitrary: shortText },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom('a', 'é', '🂡', '\uD800', '%'), fc.integer({ min: 300, max: 200_000 }))
      .map(([c, n]) => c.repeat(n)),
  },
)

const interestingNumbers = fc.constantFrom(
  0,
  -0,
  1,
  -1,
  0.5,
  2 ** 31,
  2 ** 32,
  2 ** 53,
  -(2 ** 53),
  Number.MAX_SAFE_INTEGER,
  Number.MIN_SAFE_INTEGER,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  Number.EPSILON,
  1e21,
)

/** Numbers DAG-CBOR can carry (no NaN or infinities). */
export const number: fc.Arbitrary<number> = fc.oneof(
  fc.integer(),
  fc.maxSafeInteger(),
  interestingNumbers,
  fc.double({ noNaN: true, noDefaultInfinity: true }),
)

/** Integers DAG-CBOR carries as bigints: beyond 2^53, up to the 64-bit range it encodes. */
export const bigInteger = fc.bigInt({ min: -(2n ** 64n), max: 2n ** 64n - 1n })

const hashes = [
  { code: 0x12, size: 32 }, // sha2-256, the only one Covenant reads
  { code: 0x13, size: 64 }, // sha2-512
  { code: 0x00, size: 0 }, // identity, any size
  { code: 0xb220, size: 32 }, // blake2b-256
]

/** CIDs, supported and not: other codecs and hashes, identity digests, v0. */
export const cid: fc.Arbitrary<CID> = fc.oneof(
  fc
    .tuple(
      fc.constantFrom(0x55, 0x71, 0x70, 0x72, 0x0129, 0x12345),
      fc.constantFrom(...hashes),
      fc.uint8Array({ minLength: 0, maxLength: 64 }),
    )
    .map(([codec, hash, bytes]) => {
      const digest = hash.code === 0 ? bytes : fill(bytes, hash.size)
      return CID.createV1(codec, Digest.create(hash.code, digest))
    }),
  fc.uint8Array({ minLength: 32, maxLength: 32 }).map((d) => CID.createV0(Digest.create(0x12, d))),
)

function fill(bytes: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size)
  out.set(bytes.subarray(0, size))
  return out
}

export const bytes = fc.oneof(
  { weight: 5, arbitrary: fc.uint8Array({ maxLength: 80 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1000, max: 300_000 }).map((n) => new Uint8Array(n).fill(7)) },
)

const key = fc.oneof(
  { weight: 4, arbitrary: fc.string({ maxLength: 10 }) },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'type',
      'v',
      'cid',
      'ns',
      'id',
      'request',
      'receipt',
      'signature',
      'covenant',
      'config',
      'peer',
      'error',
      'result',
    ),
  },
  { weight: 1, arbitrary: edgeString },
)

/** Values built from `leaves` in lists and maps of up to six, nested a little. */
function treeOf(leaves: fc.Arbitrary<unknown>[]): fc.Arbitrary<unknown> {
  return fc.letrec<{ value: unknown; list: unknown[]; map: object }>((tie) => ({
    value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, ...leaves, tie('list'), tie('map')),
    list: fc.array(tie('value'), { maxLength: 6 }),
    map: fc.dictionary(key, tie('value'), { maxKeys: 6, noNullPrototype: true }),
  })).value
}

/** One value of the DAG-CBOR data model, nested a little. */
export const cborValue = treeOf([fc.constant(null), fc.boolean(), number, bigInteger, text, bytes, cid])

/** One JSON value (what an HTTP body or a JSON form can hold), with edge-case strings. */
export const jsonValue = treeOf([fc.constant(null), fc.boolean(), number, text])

/** A value `depth` levels deep (arrays or maps), built without recursion. */
export function nest(value: unknown, depth: number, as: 'list' | 'map' = 'list'): unknown {
  let v = value
  for (let i = 0; i < depth; i++) v = as === 'list' ? [v] : { a: v }
  return v
}

/** A deeply nested value, as JavaScript (for in-process and JSON targets). */
export const deepValue = fc
  .tuple(fc.integer({ min: 64, max: 20_000 }), fc.constantFrom('list' as const, 'map' as const))
  .map(([depth, as]) => nest(null, depth, as))

// ── CBOR-shaped bytes ───────────────────────────────────────────────────────────────────────────

/** A CBOR head: major type, and an argument in whichever width (including the ones DAG-CBOR refuses). */
const cborHead = fc
  .tuple(fc.integer({ min: 0, max: 7 }), fc.constantFrom(0, 1, 23, 24, 25, 26, 27, 28, 31), fc.nat())
  .map(([major, info, arg]) => {
    const first = (major << 5) | info
    if (info < 24 || info === 31 || info === 28) return [first]
    const width = ({ 24: 1, 25: 2, 26: 4, 27: 8 } as Record<number, number>)[info] ?? 0
    const out = [first]
    for (let i = width - 1; i >= 0; i--) out.push(i < 4 ? (arg >>> (8 * i)) & 0xff : 0xff)
    return out
  })

/** Bytes that look like CBOR: heads, tag 42 (CIDs), lengths claiming far more than follows, deep nesting. */
export const cborishBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc
    .array(
      fc.oneof(
        { weight: 4, arbitrary: cborHead },
        { weight: 1, arbitrary: fc.constant([0xd8, 0x2a, 0x58, 0x25, 0x00, 0x01, 0x71, 0x12, 0x20]) },
        { weight: 1, arbitrary: fc.constant([0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]) },
        { weight: 1, arbitrary: fc.constant([0x9f]) },
        { weight: 1, arbitrary: fc.constant([0xf9, 0x7e, 0x00]) },
        { weight: 2, arbitrary: fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 8 }) },
      ),
      { maxLength: 24 },
    )
    .map((parts) => Uint8Array.from(parts.flat())),
  fc
    .tuple(fc.integer({ min: 100, max: 200_000 }), fc.constantFrom([0x81], [0xa1, 0x61, 0x61], [0xd8, 0x2a]))
    .map(([depth, head]) => {
      const out = new Uint8Array(depth * head.length + 1)
      for (let i = 0; i < depth; i++) out.set(head, i * head.length)
      out[out.length - 1] = 0xf6
      return out
    }),
  fc.uint8Array({ maxLength: 200 }),
)

/** The DAG-CBOR of `value`, or undefined when a mutation made it unencodable (NaN, too deep). */
export function encoded(value: unknown): Uint8Array | undefined {
  try {
    return dagCbor.encode(value)
  } catch {
    return undefined
  }
}

/** Any bytes a peer could send as a message body: encoded values, CBOR-shaped garbage, noise. */
export const messageBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  cborValue.map((v) => dagCbor.encode(v)),
  cborishBytes,
)

// ── mutations of real messages ──────────────────────────────────────────────────────────────────

type Path = Array<string | number>

function isMap(v: unknown): v is Record<string, unknown> {
  return (
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    !(v instanceof Uint8Array) &&
    CID.asCID(v) === null
  )
}

/** A copy of a value of the data model; bytes copied, CIDs kept (they are immutable). */
export function copy<T>(v: T): T {
  if (v instanceof Uint8Array) return new Uint8Array(v) as T
  if (Array.isArray(v)) return v.map(copy) as T
  if (isMap(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copy(x)])) as T
  return v
}

/** The paths to every place in a value, down to a depth of 64 (below that, a place is as good as its parent). */
function places(v: unknown, path: Path = [], out: Path[] = []): Path[] {
  out.push(path)
  if (path.length >= 64) return out
  if (Array.isArray(v)) for (const [i, x] of v.entries()) places(x, [...path, i], out)
  else if (isMap(v)) for (const [k, x] of Object.entries(v)) places(x, [...path, k], out)
  return out
}

function at(root: unknown, path: Path): unknown {
  let v = root
  for (const p of path) v = (v as Record<string | number, unknown>)[p]
  return v
}

const OPS = ['drop', 'add', 'replace', 'retype', 'flip', 'duplicate', 'reorder', 'nest', 'inflate'] as const
type Op = (typeof OPS)[number]

export interface Mutation {
  op: Op
  /** which place in the value (modulo their number) */
  place: number
  /** a number the op reads as it needs: an index, a bit, a count */
  n: number
  /** the value an op puts in */
  with: unknown
  /** a key an op adds */
  key: string
}

/** How `mutation` changes `value` where it points: the value that takes its place, or `DROP`. */
function changed(v: unknown, m: Mutation): unknown {
  switch (m.op) {
    case 'replace':
      return m.with
    case 'retype':
      if (typeof v === 'string') return new TextEncoder().encode(v)
      if (v instanceof Uint8Array) return m.n % 2 === 0 ? Buffer.from(v).toString('base64') : [...v]
      if (typeof v === 'number')
        return m.n % 2 === 0 || !Number.isFinite(v) ? String(v) : BigInt(Math.trunc(v)) + 2n ** 60n
      if (typeof v === 'boolean') return v ? 1 : 0
      if (Array.isArray(v)) return Object.fromEntries(v.map((x, i) => [String(i), x]))
      if (isMap(v)) return Object.values(v)
      if (v !== null && CID.asCID(v) !== null) return m.n % 2 === 0 ? String(v) : (v as CID).bytes
      return m.with
    case 'flip':
      if (v instanceof Uint8Array) {
        if (v.length === 0) return Uint8Array.of(m.n & 0xff)
        const out = new Uint8Array(v)
        const bit = m.n % (out.length * 8)
        out[bit >> 3] ^= 1 << (bit & 7)
        return out
      }
      if (typeof v === 'string') {
        if (v.length === 0) return 'x'
        const i = m.n % v.length
        return v.slice(0, i) + String.fromCharCode(v.charCodeAt(i) ^ (1 + (m.n % 31))) + v.slice(i + 1)
      }
      if (typeof v === 'number') return [v + 1, v - 1, -v, v * 2 ** 40, v + 0.5, 2 ** 53 + 2, -1][m.n % 7]
      if (typeof v === 'bigint') return v + 1n
      if (typeof v === 'boolean') return !v
      if (v === null) return m.n % 2 === 0 ? 0 : false
      if (CID.asCID(v) !== null) {
        const c = v as CID
        const digest = new Uint8Array(c.multihash.digest)
        if (digest.length > 0) digest[m.n % digest.length] ^= 1
        return CID.create(c.version, c.code, Digest.create(c.multihash.code, digest))
      }
      return m.with
    case 'nest':
      return nest(v, 1 + (m.n % 3 === 0 ? m.n % 5000 : m.n % 8), m.n % 2 === 0 ? 'list' : 'map')
    case 'inflate': {
      const times = [2, 17, 300, 5000][m.n % 4]
      if (typeof v === 'string') return v.repeat(Math.min(times, Math.ceil(300_000 / Math.max(1, v.length))))
      if (v instanceof Uint8Array) {
        const size = Math.min(v.length * times, 2_000_000) || times
        const out = new Uint8Array(size)
        for (let i = 0; i < size; i += Math.max(1, v.length)) out.set(v.subarray(0, size - i), i)
        return out
      }
      // copies of one element, up to about 2 MB in all
      if (Array.isArray(v)) {
        const each = roughSize(v) / Math.max(1, v.length)
        const count = Math.min(times * Math.max(1, v.length), 5000, Math.floor(2_000_000 / each))
        return Array.from({ length: count }, (_, i) => v[i % (v.length || 1)] ?? null)
      }
      if (isMap(v)) {
        const out: Record<string, unknown> = { ...v }
        const count = Math.min(times, 2000, Math.floor(2_000_000 / roughSize(m.with)))
        for (let i = 0; i < count; i++) out[`${m.key}${i}`] = m.with
        return out
      }
      if (typeof v === 'number') return v * 1e300
      return m.with
    }
    default:
      return v
  }
}

/** About how many bytes a value takes, counted up to 4 MB (without recursion: values nest deep). */
function roughSize(v: unknown): number {
  const limit = 4_000_000
  let size = 0
  const stack = [v]
  while (stack.length > 0 && size < limit) {
    const x = stack.pop()
    if (typeof x === 'string' || x instanceof Uint8Array) size += x.length + 1
    else if (Array.isArray(x)) {
      // a container costs more to walk than its bytes say: count it as 16
      size += 16
      stack.push(...x)
    } else if (isMap(x))
      for (const [k, y] of Object.entries(x)) {
        size += k.length + 16
        stack.push(y)
      }
    else size += 8
  }
  return Math.max(1, size)
}

/** Applies one mutation; the value it gives may share parts with `root` (mutate a copy). */
function applyOne(root: unknown, m: Mutation): unknown {
  const all = places(root)
  const path = all[m.place % all.length]
  const parentPath = path.slice(0, -1)
  const last = path[path.length - 1]
  const target = at(root, path)
  if (m.op === 'drop' || m.op === 'add' || m.op === 'duplicate' || m.op === 'reorder') {
    // these act on a container: the value pointed at, or else its parent
    const isContainer = Array.isArray(target) || isMap(target)
    const containerPath = isContainer ? path : parentPath
    const container = at(root, containerPath)
    let next: unknown = container
    if (Array.isArray(container)) {
      const i = isContainer ? m.n % Math.max(1, container.length) : (last as number)
      if (m.op === 'drop') next = container.filter((_, j) => j !== i)
      if (m.op === 'add') next = [...container.slice(0, i), m.with, ...container.slice(i)]
      if (m.op === 'duplicate')
        next =
          container.length === 0
            ? [m.with]
            : [...container.slice(0, i + 1), container[i], ...container.slice(i + 1)]
      if (m.op === 'reorder') next = [...container].reverse()
    } else if (isMap(container)) {
      const keys = Object.keys(container)
      const k = isContainer ? keys[m.n % Math.max(1, keys.length)] : (last as string)
      if (m.op === 'drop') next = Object.fromEntries(Object.entries(container).filter(([x]) => x !== k))
      if (m.op === 'add' || m.op === 'duplicate')
        next = {
          ...container,
          [m.op === 'add' ? m.key : `${k ?? m.key}_`]: m.op === 'add' ? m.with : container[k as string],
        }
      if (m.op === 'reorder') next = Object.fromEntries(Object.entries(container).reverse())
    } else {
      next = m.op === 'drop' ? null : [container, m.with]
    }
    return replaceAt(root, containerPath, next)
  }
  return replaceAt(root, path, changed(target, m))
}

function replaceAt(root: unknown, path: Path, value: unknown): unknown {
  if (path.length === 0) return value
  const parent = at(root, path.slice(0, -1)) as Record<string | number, unknown>
  // defineProperty, so a mutation adding "__proto__" adds a key rather than a prototype
  Object.defineProperty(parent, path[path.length - 1], {
    value,
    enumerable: true,
    writable: true,
    configurable: true,
  })
  return root
}

/** One mutation of a value: which op, where, and what it puts in. */
export function mutationOf(replacement: fc.Arbitrary<unknown>): fc.Arbitrary<Mutation> {
  return fc.record({
    op: fc.constantFrom(...OPS),
    place: fc.nat(),
    n: fc.nat(),
    with: replacement,
    key: fc.oneof(key, edgeString),
  })
}

/** Applies `mutations` to a copy of `value`. */
export function mutate(value: unknown, mutations: readonly Mutation[]): unknown {
  let v = copy(value)
  for (const m of mutations) v = applyOne(v, m)
  return v
}

/**
 * Values made from `samples` by one to three mutations (each case says which sample); replacements
 * are DAG-CBOR values, or JSON values with `json` (for JSON forms and HTTP bodies).
 */
export function mutated<T>(samples: readonly T[], json = false): fc.Arbitrary<{ sample: T; value: unknown }> {
  return fc
    .tuple(
      fc.constantFrom(...samples),
      fc.array(mutationOf(json ? jsonValue : cborValue), { minLength: 1, maxLength: 3 }),
    )
    .map(([sample, ms]) => ({ sample, value: mutate(sample, ms) }))
}

// ── bytes ───────────────────────────────────────────────────────────────────────────────────────

const BYTE_OPS = ['flip', 'set', 'insert', 'delete', 'truncate', 'append', 'repeat', 'swap'] as const

/** One change to a byte string: a bit flipped, a byte set, bytes inserted or cut, the end cut off. */
export const byteMutation = fc.record({
  op: fc.constantFrom(...BYTE_OPS),
  i: fc.nat(),
  j: fc.nat(),
  value: fc.integer({ min: 0, max: 255 }),
  extra: fc.uint8Array({ minLength: 1, maxLength: 16 }),
})
export type ByteMutation = typeof byteMutation extends fc.Arbitrary<infer T> ? T : never

export function mutateBytes(input: Uint8Array, mutations: readonly ByteMutation[]): Uint8Array {
  let b = new Uint8Array(input)
  for (const m of mutations) {
    const i = b.length === 0 ? 0 : m.i % b.length
    const j = b.length === 0 ? 0 : m.j % b.length
    switch (m.op) {
      case 'flip':
        if (b.length > 0) b[i] ^= 1 << (m.j % 8)
        break
      case 'set':
        if (b.length > 0) b[i] = b[i] === m.value ? m.value ^ 0x80 : m.value
        break
      case 'insert':
        b = Uint8Array.from([...b.subarray(0, i), ...m.extra, ...b.subarray(i)])
        break
      case 'delete':
        b = Uint8Array.from([...b.subarray(0, i), ...b.subarray(i + 1 + (m.j % 8))])
        break
      case 'truncate':
        b = b.slice(0, i)
        break
      case 'append':
        b = Uint8Array.from([...b, ...m.extra])
        break
      case 'repeat':
        b = Uint8Array.from([
          ...b.subarray(0, j),
          ...b.subarray(Math.min(i, j), Math.max(i, j) + 1),
          ...b.subarray(j),
        ])
        break
      case 'swap':
        ;[b[i], b[j]] = [b[j], b[i]]
        break
    }
  }
  return b
}

/** Byte strings made from `samples` by one to three byte changes. */
export function mutatedBytes(
  samples: readonly Uint8Array[],
): fc.Arbitrary<{ sample: Uint8Array; value: Uint8Array }> {
  return fc
    .tuple(fc.constantFrom(...samples), fc.array(byteMutation, { minLength: 1, maxLength: 3 }))
    .map(([sample, ms]) => ({ sample, value: mutateBytes(sample, ms) }))
}
