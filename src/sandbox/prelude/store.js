// @ts-check
/**
 * `ctx.store` and `ctx.enqueue`. The host checks every input and records the call's reads, writes
 * and jobs (src/sandbox/effects.ts); this part only serialises values the way the function's own
 * `JSON.stringify` would (so `toJSON` is honoured), and turns the host's replies into values,
 * errors and promises. It relies on nothing user code can replace: the built-ins it uses were
 * captured before any other code ran, and the record is out of the sandbox's reach.
 *
 * A read the host must answer leaves a promise waiting under the read's number; the engine
 * delivers the answers between runs of the job queue, in the order the reads were asked, so
 * every executor resumes the function at the same points with the same values.
 */
import {
  ErrorC,
  HOST,
  JSONparse,
  JSONstringify,
  MapC,
  MapDelete,
  MapGet,
  MapSet,
  NumberC,
  ObjectFreeze,
  OrigPromise,
  promiseThen,
  RangeErrorC,
  ReflectApply,
  StringSlice,
  TypeErrorC,
} from './intrinsics.js'

const api = HOST.api

/** @typedef {{ reply: Promise<string>, settle(reply: string): void }} PendingRead */

/** @type {Map<number, PendingRead>} reads the host has yet to answer, by number */
let pending = new MapC()

/** Forgets the reads of the last call (an instance restored from its snapshot has none). */
export function resetStore() {
  pending = new MapC()
}

/**
 * Acts on a reply: `v…` is a value (JSON), `t…`, `r…` and `e…` a TypeError, RangeError or Error
 * with that message, '' nothing, and `x` means the call must stop (its fuel is spent): spinning
 * reaches the engine's next interrupt check within a tick, and the interrupt ends the call where
 * a thrown error could be caught and the call go on moving bytes.
 * @param {string} reply
 * @returns {unknown}
 */
const act = (reply) => {
  const kind = reply[0]
  if (kind === 'x') for (;;) {}
  const rest = ReflectApply(StringSlice, reply, [1])
  if (kind === 'v') return JSONparse(rest)
  if (kind === 't') throw new TypeErrorC(rest)
  if (kind === 'r') throw new RangeErrorC(rest)
  if (kind === 'e') throw new ErrorC(rest)
  return undefined
}

/**
 * Settles every get waiting for read `n` with the host's reply to it. Each get chained its own
 * `act` on the reply, so each gets its own copy of the value, in the order the gets were made.
 * @param {number} n
 * @param {string} reply
 */
export function settleRead(n, reply) {
  const read = /** @type {PendingRead} */ (ReflectApply(MapGet, pending, [n]))
  ReflectApply(MapDelete, pending, [n])
  read.settle(reply)
}

/**
 * @param {unknown} ns
 * @param {unknown} key
 * @returns {Promise<unknown>}
 */
function get(ns, key) {
  const reply = api('get', ns, key)
  if (reply[0] !== 'w') return new OrigPromise((resolve) => resolve(act(reply)))
  const n = NumberC(ReflectApply(StringSlice, reply, [1]))
  let read = /** @type {PendingRead | undefined} */ (ReflectApply(MapGet, pending, [n]))
  if (read === undefined) {
    /** @type {(reply: string) => void} */
    let settle = () => {}
    const replied = new OrigPromise((resolve) => {
      settle = resolve
    })
    read = { reply: replied, settle }
    ReflectApply(MapSet, pending, [n, read])
  }
  return ReflectApply(promiseThen, read.reply, [act])
}

/**
 * @param {unknown} ns
 * @param {unknown} key
 * @param {unknown} value
 */
function put(ns, key, value) {
  act(api('put', ns, key, JSONstringify(value)))
}

/**
 * @param {unknown} ns
 * @param {unknown} key
 */
function del(ns, key) {
  act(api('delete', ns, key))
}

/** `ctx.store`: frozen, like `ctx`. */
export const store = ObjectFreeze({ get, put, delete: del })

/**
 * `ctx.enqueue`: records a job; returns nothing.
 * @param {unknown} fn
 * @param {unknown} exportName
 * @param {unknown} args
 * @param {unknown} [options]
 */
export function enqueue(fn, exportName, args, options) {
  // an options value JSON cannot show (a function) must not pass for "no options"
  const optionsJson = options === undefined ? undefined : (JSONstringify(options) ?? null)
  act(api('enqueue', fn, exportName, JSONstringify(args), optionsJson))
}
