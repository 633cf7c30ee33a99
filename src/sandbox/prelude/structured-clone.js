// @ts-check
/**
 * `structuredClone` for the values a sandboxed function can hold: primitives, plain objects and
 * arrays (cycles and shared references kept), Date, RegExp, Map, Set, ArrayBuffer and its views,
 * and errors. Functions, symbols, promises, WeakMap and WeakSet throw a DataCloneError.
 */
import {
  ArrayBufferC,
  ArrayBufferIsView,
  ArrayC,
  ArrayIsArray,
  DataViewC,
  define,
  ErrorC,
  G,
  MapC,
  MapGet,
  MapHas,
  MapSet,
  ObjectGetPrototypeOf,
  ObjectKeys,
  OrigDate,
  OrigPromise,
  ReflectApply,
  RegExpC,
  SetC,
  StringC,
  WeakMapC,
  WeakSetC,
} from './intrinsics.js'

/** @param {string} what */
const cloneError = (what) => {
  const e = new ErrorC(`${what} could not be cloned`)
  e.name = 'DataCloneError'
  return e
}

/**
 * @param {any} v
 * @param {Map<object, unknown>} seen each original already cloned, with its clone
 * @returns {unknown}
 */
const clone = (v, seen) => {
  if (typeof v !== 'object' || v === null) {
    if (typeof v === 'function' || typeof v === 'symbol') throw cloneError(StringC(typeof v))
    return v
  }
  if (ReflectApply(MapHas, seen, [v])) return ReflectApply(MapGet, seen, [v])
  /** @type {any} */
  let out
  if (v instanceof OrigDate) out = new OrigDate(v.getTime())
  else if (v instanceof RegExpC) out = new RegExpC(v.source, v.flags)
  else if (v instanceof ArrayBufferC) out = v.slice(0)
  else if (ArrayBufferIsView(v)) {
    const buf = clone(v.buffer, seen)
    out = new (ObjectGetPrototypeOf(v).constructor)(
      buf,
      v.byteOffset,
      v instanceof DataViewC ? v.byteLength : /** @type {Uint8Array} */ (v).length,
    )
  } else if (v instanceof MapC) {
    out = new MapC()
    ReflectApply(MapSet, seen, [v, out])
    for (const [k, x] of v) out.set(clone(k, seen), clone(x, seen))
    return out
  } else if (v instanceof SetC) {
    out = new SetC()
    ReflectApply(MapSet, seen, [v, out])
    for (const x of v) out.add(clone(x, seen))
    return out
  } else if (v instanceof ErrorC) {
    out = new ErrorC(v.message)
    out.name = v.name
  } else if (ArrayIsArray(v)) {
    // holes stay holes: only the array's own keys are copied
    const items = /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (v))
    out = new ArrayC(v.length)
    ReflectApply(MapSet, seen, [v, out])
    for (const k of ObjectKeys(v)) out[k] = clone(items[k], seen)
    return out
  } else if (v instanceof OrigPromise || v instanceof WeakMapC || v instanceof WeakSetC) {
    throw cloneError(ObjectGetPrototypeOf(v).constructor.name)
  } else {
    out = {}
    ReflectApply(MapSet, seen, [v, out])
    for (const k of ObjectKeys(v)) out[k] = clone(v[k], seen)
    return out
  }
  ReflectApply(MapSet, seen, [v, out])
  return out
}

define(
  G,
  'structuredClone',
  /** @param {unknown} value */
  function structuredClone(value) {
    return clone(value, new MapC())
  },
)
