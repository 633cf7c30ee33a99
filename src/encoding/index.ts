/**
 * Encodings every part shares: what counts as a plain JSON value, hex, and the JSON form of a
 * signed value (its byte fields in base64), sha-256. It loads in a browser: sha-256 is node:crypto's
 * in Node and @noble/hashes' in a browser bundle (sha256.ts).
 *
 * @example
 * ```ts
 * isJsonValue({ a: [1, 'x', null] })                 // true
 * isJsonValue({ a: NaN })                            // false
 * toHex(new Uint8Array([1, 255]))                    // '01ff'
 * bytesFieldsToJSON({ peer: 'p', signature: sig })   // { peer: 'p', signature: 'base64…' }
 * bytesFieldsFromJSON(json, ['signature'])           // { peer: 'p', signature: Uint8Array }
 * ```
 */
export { sha256 } from './sha256.ts'

import { fromString as bytesFromString } from 'uint8arrays/from-string'
import { toString as bytesToString } from 'uint8arrays/to-string'

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

// Deep enough for any sane argument, shallow enough that no recursive walker (ours, zod's, the
// DAG-CBOR codec's) can blow the host stack on crafted input.
export const MAX_JSON_DEPTH = 256

/**
 * True if `value` is a plain JSON value: null, boolean, finite number, string, array (without
 * holes) or plain object of those, nested at most {@link MAX_JSON_DEPTH} deep. Iterative, so a
 * deeply nested input cannot overflow the stack.
 */
export function isJsonValue(value: unknown): value is JsonValue {
  const stack: Array<{ v: unknown; depth: number }> = [{ v: value, depth: 0 }]
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!
    if (v === null || typeof v === 'string' || typeof v === 'boolean') continue
    if (typeof v === 'number') {
      if (!Number.isFinite(v)) return false
      continue
    }
    if (typeof v !== 'object' || depth >= MAX_JSON_DEPTH) return false
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        if (!(i in v)) return false
        stack.push({ v: v[i], depth: depth + 1 })
      }
      continue
    }
    const proto = Object.getPrototypeOf(v)
    if (proto !== Object.prototype && proto !== null) return false
    for (const item of Object.values(v)) stack.push({ v: item, depth: depth + 1 })
  }
  return true
}

const HEX = '0123456789abcdef'

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let out = ''
  for (const b of bytes) out += HEX[b >> 4] + HEX[b & 15]
  return out
}

/** Standard padded base64 of `bytes`. */
export function toBase64(bytes: Uint8Array): string {
  return bytesToString(bytes, 'base64pad')
}

/** Bytes of padded base64 `text`; `undefined` if it is not base64. */
export function fromBase64(text: string): Uint8Array | undefined {
  try {
    return bytesFromString(text, 'base64pad')
  } catch {
    return undefined
  }
}

/** The JSON form of `T`: every `Uint8Array` in it, at any depth, is a padded base64 string. */
export type JsonForm<T> = T extends JsonValue
  ? T
  : T extends Uint8Array
    ? string
    : T extends ReadonlyArray<infer U>
      ? JsonForm<U>[]
      : T extends object
        ? { [K in keyof T]: JsonForm<T[K]> }
        : T

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object') return false
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/**
 * The JSON form of a value that holds bytes (signatures, mostly): every `Uint8Array`, at any depth,
 * becomes padded base64. The inverse is {@link bytesFieldsFromJSON} with the paths of the byte
 * fields.
 */
export function bytesFieldsToJSON<T>(value: T): JsonForm<T> {
  if (value instanceof Uint8Array) return toBase64(value) as JsonForm<T>
  if (Array.isArray(value)) return value.map(bytesFieldsToJSON) as JsonForm<T>
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = bytesFieldsToJSON(v)
    return out as JsonForm<T>
  }
  return value as JsonForm<T>
}

// A base64 field longer than this is no signature or key of ours: left for the schema to refuse.
const MAX_BASE64_FIELD = 4096

interface PathStep {
  key: string
  /** the field is an array and the rest of the path applies to each element */
  each: boolean
}

function decodeAt(value: unknown, steps: readonly PathStep[]): unknown {
  if (!isPlainObject(value) || !Object.hasOwn(value, steps[0].key)) return value
  const [{ key, each }, ...rest] = steps
  const at = (v: unknown): unknown => {
    if (rest.length > 0) return decodeAt(v, rest)
    return typeof v === 'string' && v.length <= MAX_BASE64_FIELD ? (fromBase64(v) ?? v) : v
  }
  const field = value[key]
  const decoded = each ? (Array.isArray(field) ? field.map(at) : field) : at(field)
  return decoded === field ? value : { ...value, [key]: decoded }
}

/**
 * Reads the JSON form back: the base64 string at each of `paths` becomes bytes. A path names keys
 * from the top, dot-separated, with `[]` after a key whose value is an array of such objects:
 * `'signature'`, `'request.signature'`, `'receipts[].signature'`. Only those places are read, so a
 * base64-looking string anywhere else (in a function's arguments, say) stays a string; a missing
 * field, a non-object or a string that is not base64 is left as it is for the caller's schema to
 * refuse. Never throws, never changes `value`.
 */
export function bytesFieldsFromJSON(value: unknown, paths: readonly string[]): unknown {
  let out = value
  for (const path of paths) {
    const steps = path.split('.').map((part) => {
      const each = part.endsWith('[]')
      return { key: each ? part.slice(0, -2) : part, each }
    })
    out = decodeAt(out, steps)
  }
  return out
}
