// @ts-check
/**
 * What makes every executor see the same world: no GC-observable objects, a seeded random stream
 * behind `Math.random` and `crypto`, and a `Date` that reads the request's timestamp. The driver
 * sets the seed and the time before each call.
 */
import {
  ArrayBufferIsView,
  DataViewC,
  define,
  ErrorC,
  G,
  ObjectDefineProperty,
  OrigDate,
  ReflectApply,
  ReflectConstruct,
  TypeErrorC,
  Uint8ArrayC,
} from './intrinsics.js'

// GC timing differs between runs; anything that lets code observe it breaks determinism.
delete G.WeakRef
delete G.FinalizationRegistry

// sfc32: small, fast, well distributed, and fully specified, so every executor gets the same stream
let s0 = 0
let s1 = 0
let s2 = 0
let s3 = 1

/** The next 32 bits of the stream, as an unsigned integer. */
export const next32 = () => {
  const t = (((s0 + s1) | 0) + s3) | 0
  s3 = (s3 + 1) | 0
  s0 = s1 ^ (s1 >>> 9)
  s1 = (s2 + (s2 << 3)) | 0
  s2 = (s2 << 21) | (s2 >>> 11)
  s2 = (s2 + t) | 0
  return t >>> 0
}

/** A number in [0, 1) from the stream: `ctx.random`. */
export const random = () => next32() / 4294967296

/**
 * Starts the stream from four 32-bit words (the host derives them from the request id).
 * @param {number} a
 * @param {number} b
 * @param {number} c
 * @param {number} d
 */
export function seedRandom(a, b, c, d) {
  s0 = a | 0
  s1 = b | 0
  s2 = c | 0
  s3 = d | 0
  for (let i = 0; i < 12; i++) next32()
}

define(Math, 'random', function random() {
  return next32() / 4294967296
})

let NOW = 0

/**
 * Sets what `Date.now()` and `new Date()` read: the request's timestamp.
 * @param {number} now ms since the epoch
 */
export function setNow(now) {
  NOW = now
}

/**
 * `Date` pinned to the request's time. Not a `function Date` declaration: that would shadow (and
 * hoist over) the original.
 * @param {...unknown} args
 */
const PinnedDate = function (...args) {
  if (new.target === undefined) return ReflectApply(OrigDate.prototype.toString, new OrigDate(NOW), [])
  return ReflectConstruct(OrigDate, args.length === 0 ? [NOW] : args, new.target)
}
ObjectDefineProperty(PinnedDate, 'prototype', { value: OrigDate.prototype, writable: false })
ObjectDefineProperty(PinnedDate, 'length', { value: 7 })
ObjectDefineProperty(PinnedDate, 'name', { value: 'Date' })
define(OrigDate.prototype, 'constructor', PinnedDate)
define(PinnedDate, 'now', function now() {
  return NOW
})
define(PinnedDate, 'UTC', OrigDate.UTC)
define(PinnedDate, 'parse', OrigDate.parse)
define(G, 'Date', PinnedDate)

// Deterministic, therefore NOT secret: every executor of a request produces the same bytes.
// Offered so id-generating packages work; docs/functions.md says never to use it for secrets.
const cryptoObj = {}
define(
  cryptoObj,
  'getRandomValues',
  /**
   * @template {ArrayBufferView} T
   * @param {T} arr
   * @returns {T}
   */
  function getRandomValues(arr) {
    if (!ArrayBufferIsView(arr) || arr instanceof DataViewC)
      throw new TypeErrorC('expected an integer TypedArray')
    const bytes = new Uint8ArrayC(arr.buffer, arr.byteOffset, arr.byteLength)
    if (bytes.length > 65536) throw new ErrorC('QuotaExceededError: at most 65536 bytes')
    for (let i = 0; i < bytes.length; i++) bytes[i] = next32() & 255
    return arr
  },
)
define(cryptoObj, 'randomUUID', function randomUUID() {
  const b = new Uint8ArrayC(16)
  for (let i = 0; i < 16; i++) b[i] = next32() & 255
  b[6] = (b[6] & 0x0f) | 0x40
  b[8] = (b[8] & 0x3f) | 0x80
  let h = ''
  for (let i = 0; i < 16; i++)
    h += (b[i] < 16 ? '0' : '') + b[i].toString(16) + ([3, 5, 7, 9].includes(i) ? '-' : '')
  return h
})
define(G, 'crypto', cryptoObj)
