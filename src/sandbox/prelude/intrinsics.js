// @ts-check
/**
 * The built-ins the prelude relies on, captured before any other code runs. User code that later
 * overwrites `JSON.stringify`, `Reflect.apply` or `Promise.prototype.then` cannot change what the
 * driver, the console or the hand-written polyfills do with them.
 */

/** The global object, as a plain record: the prelude adds and removes globals by name. */
export const G = /** @type {Record<string, unknown>} */ (/** @type {unknown} */ (globalThis))

/**
 * The host's functions, which the engine passes in `globalThis.__covenantHost`; removed at once so
 * that no other code sees them. `log` takes one line; `api` is ctx.store's and ctx.enqueue's way to
 * the host, which checks and records what the call asks (src/sandbox/effects.ts) and replies with
 * a string (see store.js).
 */
export const HOST = /** @type {{ log(line: string): void, api(op: string, ...args: unknown[]): string }} */ (
  G.__covenantHost
)
delete G.__covenantHost

export const ReflectApply = Reflect.apply
export const ReflectConstruct = Reflect.construct
export const ObjectFreeze = Object.freeze
export const ObjectDefineProperty = Object.defineProperty
export const ObjectKeys = Object.keys
export const ObjectGetPrototypeOf = Object.getPrototypeOf
export const JSONstringify = JSON.stringify
export const JSONparse = JSON.parse
export const StringC = String
export const StringFromCharCode = String.fromCharCode
export const StringSlice = String.prototype.slice
export const ErrorC = Error
export const TypeErrorC = TypeError
export const SyntaxErrorC = SyntaxError
export const RangeErrorC = RangeError
export const ReferenceErrorC = ReferenceError
export const EvalErrorC = EvalError
export const URIErrorC = URIError
export const ObjectHasOwn = Object.hasOwn
export const NumberC = Number
export const BooleanC = Boolean
export const BigIntC = BigInt
export const NumberValueOf = Number.prototype.valueOf
export const StringValueOf = String.prototype.valueOf
export const BooleanValueOf = Boolean.prototype.valueOf
export const BigIntValueOf = BigInt.prototype.valueOf
export const ObjectC = Object
/** QuickJS's own error class for out-of-memory and stack overflow; absent in other engines. */
export const InternalErrorC = /** @type {ErrorConstructor | undefined} */ (G.InternalError)
export const OrigDate = Date
export const OrigPromise = Promise
export const promiseThen = Promise.prototype.then
export const promiseResolve = Promise.resolve
export const ArrayC = Array
export const ArrayIsArray = Array.isArray
export const ArrayPush = Array.prototype.push
export const MapC = Map
export const SetC = Set
export const MapGet = Map.prototype.get
export const MapSet = Map.prototype.set
export const MapHas = Map.prototype.has
export const MapDelete = Map.prototype.delete
export const RegExpC = RegExp
export const ArrayBufferC = ArrayBuffer
export const ArrayBufferIsView = ArrayBuffer.isView
export const Uint8ArrayC = Uint8Array
export const DataViewC = DataView
export const WeakMapC = WeakMap
export const WeakSetC = WeakSet

/**
 * Defines a property the way Web IDL defines globals: writable, configurable, and enumerable only
 * for the global functions (`atob`, `structuredClone`, …), not for classes or namespaces.
 * @param {object} obj
 * @param {PropertyKey} name
 * @param {unknown} value
 * @param {boolean} [enumerable]
 */
export const define = (obj, name, value, enumerable = false) =>
  ObjectDefineProperty(obj, name, { value, writable: true, configurable: true, enumerable })
