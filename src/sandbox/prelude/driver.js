// @ts-check
/**
 * The private driver the host uses to run one call: set up the deterministic inputs, call an
 * export, tell whether its promise is still pending while the host runs the job queue, hand the
 * function the host's answers to its reads, and serialise the outcome. Also `queueMicrotask`,
 * which feeds that same job queue.
 */
import { log } from './console.js'
import { random, seedRandom, setNow } from './determinism.js'
import {
  ArrayPush,
  define,
  ErrorC,
  G,
  InternalErrorC,
  JSONparse,
  JSONstringify,
  ObjectFreeze,
  OrigPromise,
  promiseResolve,
  promiseThen,
  ReflectApply,
  StringC,
  SyntaxErrorC,
  TypeErrorC,
} from './intrinsics.js'
import { enqueue, resetStore, settleRead, store } from './store.js'

define(
  G,
  'queueMicrotask',
  /** @param {unknown} fn */
  function queueMicrotask(fn) {
    if (typeof fn !== 'function') throw new TypeErrorC('The "callback" argument must be of type function')
    ReflectApply(promiseThen, ReflectApply(promiseResolve, OrigPromise, []), [() => fn()])
  },
  true,
)

// state: 0 not called, 1 waiting for a promise, 2 returned, 3 threw
let state = 0
/** @type {unknown} */
let outcome
/** @type {object | null} the frozen `ctx` every call receives last */
let ctxObj = null

/**
 * A thrown value as the result's error message shows it.
 * @param {unknown} e
 */
const describe = (e) => {
  try {
    if (e instanceof ErrorC) {
      const msg = StringC(e.message)
      const name = StringC(e.name)
      return (name === 'Error' || name === '' ? msg : `${name}: ${msg}`).slice(0, 4096)
    }
    return StringC(e).slice(0, 4096)
  } catch {
    return 'the function threw a value that cannot be shown'
  }
}

/**
 * 'm' for QuickJS's out-of-memory, 's' for its stack overflow, '' for anything else.
 * @param {unknown} e
 */
const internalKind = (e) => {
  if (InternalErrorC !== undefined && e instanceof InternalErrorC) {
    if (e.message === 'out of memory') return 'm'
    if (e.message === 'stack overflow') return 's'
  }
  // QuickJS's JSON parser and regexp compiler report their own depth limit as a SyntaxError
  if (e instanceof SyntaxErrorC && e.message === 'stack overflow') return 's'
  return ''
}

/** @param {unknown} r what the export returned */
const settle = (r) => {
  if (
    (typeof r === 'object' || typeof r === 'function') &&
    r !== null &&
    typeof (/** @type {{ then?: unknown }} */ (r).then) === 'function'
  ) {
    state = 1
    ReflectApply(promiseThen, ReflectApply(promiseResolve, OrigPromise, [r]), [
      (/** @type {unknown} */ v) => {
        state = 2
        outcome = v
      },
      (/** @type {unknown} */ e) => {
        state = 3
        outcome = e
      },
    ])
  } else {
    state = 2
    outcome = r
  }
}

export const driver = ObjectFreeze({
  /**
   * @param {number} a
   * @param {number} b
   * @param {number} c
   * @param {number} d the four seed words
   * @param {number} now the request's timestamp
   * @param {string} requestJson `ctx.request`
   */
  setup(a, b, c, d, now, requestJson) {
    seedRandom(a, b, c, d)
    setNow(now)
    resetStore()
    const request = ObjectFreeze(JSONparse(requestJson))
    ctxObj = ObjectFreeze({ log, random, now, request, store, enqueue })
  },
  /**
   * Calls export `name` of module namespace `ns`; 'n' if there is no such function. A module
   * namespace's `then` export would make the namespace a thenable, so it is read directly.
   * @param {Record<string, unknown>} ns
   * @param {string} name
   * @param {string} argsJson
   */
  call(ns, name, argsJson) {
    const fn = ns[name]
    if (typeof fn !== 'function') return 'n'
    const args = JSONparse(argsJson)
    ReflectApply(ArrayPush, args, [ctxObj])
    try {
      settle(ReflectApply(fn, undefined, args))
    } catch (e) {
      state = 3
      outcome = e
    }
    return ''
  },
  pending() {
    return state === 1
  },
  /**
   * The host's reply to read `n` (see store.js), delivered between runs of the job queue.
   * @param {number} n
   * @param {string} reply
   */
  settleRead(n, reply) {
    settleRead(n, reply)
  },
  /**
   * One letter says what happened, then the payload: v<json> value, e<message> threw, m out of
   * memory, s stack overflow, o output too large, p never settled.
   * @param {number} outputLimit
   */
  finish(outputLimit) {
    if (state === 1) return 'p'
    if (state === 3) return internalKind(outcome) || `e${describe(outcome)}`
    let json
    try {
      json = JSONstringify(outcome)
    } catch (e) {
      return internalKind(e) || `ethe result is not JSON-serialisable: ${describe(e)}`
    }
    if (json === undefined) json = 'null'
    if (json.length > outputLimit) return 'o'
    return `v${json}`
  },
  /** @param {unknown} e */
  describeLoadError(e) {
    return internalKind(e) || `e${describe(e)}`
  },
})
