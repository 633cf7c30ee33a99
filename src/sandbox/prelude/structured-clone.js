// @ts-check
/**
 * `structuredClone` for the values a sandboxed function can hold: primitives, plain objects and
 * arrays (cycles and shared references kept), Date, RegExp, Map, Set, ArrayBuffer and its views,
 * boxed primitives, and errors (as the standard error type their name gives, with message and
 * cause). Functions, symbols, promises, WeakMap and WeakSet throw a DataCloneError.
 */
import {
  ArrayBufferC,
  ArrayBufferIsView,
  ArrayC,
  ArrayIsArray,
  BigIntC,
  BigIntValueOf,
  BooleanC,
  BooleanValueOf,
  DataViewC,
  define,
  ErrorC,
  EvalErrorC,
  G,
  MapC,
  MapGet,
  MapHas,
  MapSet,
  NumberC,
  NumberValueOf,
  ObjectC,
  ObjectGetPrototypeOf,
  ObjectHasOwn,
  ObjectKeys,
  OrigDate,
  OrigPromise,
  RangeErrorC,
  ReferenceErrorC,
  ReflectApply,
  RegExpC,
  SetC,
  StringC,
  StringValueOf,
  SyntaxErrorC,
  TypeErrorC,
  URIErrorC,
  WeakMapC,
  WeakSetC,
} from './intrinsics.js'

/** @param {string} what */
const cloneError = (what) => {
  const e = new ErrorC(`${what} could not be cloned`)
  e.name = 'DataCloneError'
  return e
}

/** The error types a clone keeps; any other name clones as a plain Error, as the standard says. */
/** @type {Record<string, ErrorConstructor>} */
const ERROR_TYPES = {
  Error: ErrorC,
  EvalError: EvalErrorC,
  RangeError: RangeErrorC,
  ReferenceError: ReferenceErrorC,
  SyntaxError: SyntaxErrorC,
  TypeError: TypeErrorC,
  URIError: URIErrorC,
}

/**
 * The primitive inside a Number, String, Boolean or BigInt object; `undefined` for anything else
 * (including an object that only inherits from one of their prototypes).
 * @param {object} v
 * @returns {{ value: unknown } | undefined}
 */
const unbox = (v) => {
  const primitiveOf =
    v instanceof NumberC
      ? NumberValueOf
      : v instanceof StringC
        ? StringValueOf
        : v instanceof BooleanC
          ? BooleanValueOf
          : v instanceof BigIntC
            ? BigIntValueOf
            : undefined
  if (primitiveOf === undefined) return undefined
  try {
    return { value: ReflectApply(primitiveOf, v, []) }
  } catch {
    return undefined
  }
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
    const name = v.name
    const ErrorType = typeof name === 'string' && ObjectHasOwn(ERROR_TYPES, name) ? ERROR_TYPES[name] : ErrorC
    out = ObjectHasOwn(v, 'message') ? new ErrorType(StringC(v.message)) : new ErrorType()
    ReflectApply(MapSet, seen, [v, out])
    if (ObjectHasOwn(v, 'cause')) define(out, 'cause', clone(v.cause, seen))
    return out
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
    const boxed = unbox(v)
    if (boxed !== undefined) out = ObjectC(boxed.value)
    else {
      out = {}
      ReflectApply(MapSet, seen, [v, out])
      for (const k of ObjectKeys(v)) out[k] = clone(v[k], seen)
      return out
    }
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
  true,
)
