/**
 * Encodings every part shares: what counts as a plain JSON value, hex, and the JSON form of a
 * signed value (its byte fields in base64). No `node:` imports, so it loads in a browser.
 *
 * @example
 * ```ts
 * isJsonValue({ a: [1, 'x', null] })                 // true
 * isJsonValue({ a: NaN })                            // false
 * toHex(new Uint8Array([1, 255]))                    // '01ff'
 * bytesFieldsToJSON({ peer: 'p', signature: sig })   // { peer: 'p', signature: 'base64…' }
 * ```
 */
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

/**
 * The JSON form of a value that holds bytes (signatures, mostly): every `Uint8Array`, at any depth,
 * becomes padded base64. The inverse is {@link bytesFieldsFromJSON} with the names of the byte fields.
 */
export function bytesFieldsToJSON(value: unknown): unknown {
  if (value instanceof Uint8Array) return toBase64(value)
  if (Array.isArray(value)) return value.map(bytesFieldsToJSON)
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = bytesFieldsToJSON(v)
    return out
  }
  return value
}

/**
 * Reads the JSON form back: every string found under a key named in `fields` (at any depth) that
 * is base64 becomes bytes; anything else is left for the caller's schema to refuse. Bounded by
 * {@link MAX_JSON_DEPTH}.
 */
export function bytesFieldsFromJSON(value: unknown, fields: readonly string[], depth = 0): unknown {
  if (depth > MAX_JSON_DEPTH) return value
  if (Array.isArray(value)) return value.map((v) => bytesFieldsFromJSON(v, fields, depth + 1))
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      if (fields.includes(k) && typeof v === 'string' && v.length <= 4096) out[k] = fromBase64(v) ?? v
      else out[k] = bytesFieldsFromJSON(v, fields, depth + 1)
    }
    return out
  }
  return value
}
