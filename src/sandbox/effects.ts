/**
 * What a call asks of the world through `ctx.store` and `ctx.enqueue`: the rules every input must
 * meet, the limits on them, and the record of one call's reads, writes and jobs.
 *
 * The record lives on the host side of the engine, not in the sandbox: the function reaches it
 * only through one host function, so no code in the sandbox can alter what a call recorded, and
 * every check runs here, once, in V8. Every answer the record gives depends only on what the call
 * did before and on the host's read answers, delivered in request order, so it is deterministic.
 * Its messages become results: a change to them is an engine change (bump ENGINE_VERSION).
 */
import { isJsonValue, type JsonValue, MAX_JSON_DEPTH } from '../encoding/index.ts'
import type { EffectJob, JobOptions, SandboxEffects } from './result.ts'

const KiB = 1024
const MiB = 1024 * KiB

/**
 * Bounds on what one call may record. They are constants of the sandbox, not per-call limits, so
 * that a function relies on the same bounds wherever it runs, and they match the datastore's bounds
 * on one commit (1024 reads, 256 writes, 1 MiB values, 512-byte keys), so every write a successful
 * call records can be committed. The datastore may take them from this part's face.
 */
export const EFFECT_LIMITS = Object.freeze({
  /** UTF-8 bytes of a key (the datastore's KeySchema) */
  keyBytes: 512,
  /** DAG-CBOR bytes of one value, written or read (the datastore's MAX_VALUE_BYTES) */
  valueBytes: 1 * MiB,
  /** distinct keys a call reads from the host (the datastore's MAX_READS per commit) */
  reads: 1024,
  /** DAG-CBOR bytes of all values a call reads from the host: reads cost the executor I/O fuel does not see */
  readBytes: 8 * MiB,
  /** distinct keys a call writes (the datastore's MAX_WRITES per commit) */
  writes: 256,
  /**
   * DAG-CBOR bytes of all values a call writes, last write of each key: with the rest of the
   * output (which a function's commit carries as its proof) they fit one history entry, 5 MiB
   */
  writeBytes: 1 * MiB,
  /** jobs a call enqueues */
  jobs: 16,
  /** UTF-8 bytes of one job's arguments as JSON: a job carries keys to its data, not the data */
  jobArgsBytes: 16 * KiB,
  /** nesting of a value or a job's arguments (encoding's MAX_JSON_DEPTH, which the datastore applies) */
  jsonDepth: MAX_JSON_DEPTH,
  /** a job's `runAfterMs`: 30 days */
  jobRunAfterMs: 30 * 24 * 3600 * 1000,
  /** a job's `retries` */
  jobRetries: 16,
  /** a job's `replicas` and `quorum` (exec's MAX_REPLICAS) */
  jobReplicas: 16,
})

/**
 * Characters of JSON that cross between the sandbox and the host (values written, values handed
 * to each get, job arguments) are charged as fuel, one tick per this many: serialising and
 * parsing them are single built-in calls that QuickJS's interrupt ticks do not see, so a call
 * could otherwise move gigabytes through the store for no fuel. Measured on the reference
 * machine: a tick of a tight loop takes ≈ 0.3 ms, in which QuickJS parses ≈ 16–18 KiB of JSON.
 */
export const BYTES_PER_TICK = 16 * KiB

/**
 * A namespace id or a manifest CID in its one spelling: CIDv1, dag-cbor, sha2-256, base32 — the
 * 36 bytes 01 71 12 20 and a 32-byte digest, which always spell `bafyrei`, one of a–h (two zero
 * bits and three of the digest), 50 characters, and a last character with two zero padding bits.
 */
const CID_TEXT = /^bafyrei[a-h][a-z2-7]{50}[aeimquy4]$/
const CID_TEXT_LENGTH = 59

/** True if `text` is a CIDv1 dag-cbor sha2-256 CID in canonical base32 (a namespace id, a manifest CID). */
export function isCidText(text: unknown): text is string {
  return typeof text === 'string' && text.length === CID_TEXT_LENGTH && CID_TEXT.test(text)
}

const CONTROL = /[\u0000-\u001f\u007f]/

/** UTF-8 bytes of `s`; a lone surrogate counts 3, as the replacement character an encoder writes. */
export function utf8Length(s: string): number {
  let n = s.length
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x80) continue
    if (c < 0x800) n += 1
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1)
      // a pair: 2 units, 4 bytes
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 2
        i++
      } else n += 2
    } else n += 2
  }
  return n
}

/** Why `key` is not a datastore key (the datastore's KeySchema), or undefined if it is one. */
export function keyProblem(key: string): string | undefined {
  if (key.length === 0) return 'a key is not empty'
  if (key.length > EFFECT_LIMITS.keyBytes || utf8Length(key) > EFFECT_LIMITS.keyBytes)
    return `a key is at most ${EFFECT_LIMITS.keyBytes} UTF-8 bytes`
  if (!key.isWellFormed()) return 'a key is well-formed Unicode (no lone surrogate)'
  if (CONTROL.test(key)) return 'a key has no control characters'
  return undefined
}

/** The length of a DAG-CBOR head (major type and argument) for the argument `n`. */
function head(n: number): number {
  if (n < 24) return 1
  if (n < 0x100) return 2
  if (n < 0x10000) return 3
  if (n < 0x100000000) return 5
  return 9
}

/**
 * The number of bytes `@ipld/dag-cbor` encodes `value` in, or undefined if it nests deeper than
 * {@link EFFECT_LIMITS.jsonDepth} (the depth `isJsonValue` allows). Safe integers are CBOR
 * integers; every other number is a 64-bit float (9 bytes). Iterative, so no input overflows the
 * stack. The tests compare it with the codec on many values.
 */
export function dagCborSize(value: JsonValue): number | undefined {
  let size = 0
  const stack: Array<{ v: JsonValue; depth: number }> = [{ v: value, depth: 0 }]
  while (stack.length > 0) {
    const { v, depth } = stack.pop()!
    if (v === null || typeof v === 'boolean') size += 1
    else if (typeof v === 'number') {
      if (Number.isSafeInteger(v)) size += head(v < 0 ? -1 - v : v)
      else size += 9
    } else if (typeof v === 'string') {
      const n = utf8Length(v)
      size += head(n) + n
    } else {
      if (depth >= EFFECT_LIMITS.jsonDepth) return undefined
      if (Array.isArray(v)) {
        size += head(v.length)
        for (const item of v) stack.push({ v: item, depth: depth + 1 })
      } else {
        const keys = Object.keys(v)
        size += head(keys.length)
        for (const k of keys) {
          const n = utf8Length(k)
          size += head(n) + n
          stack.push({ v: v[k], depth: depth + 1 })
        }
      }
    }
  }
  return size
}

/**
 * Valid job options: a plain object of the four known fields, each a whole number in its range,
 * `quorum` at most `replicas`. The jobs part validates them fully when it takes the job.
 */
export function jobOptionsProblem(options: unknown): string | undefined {
  if (typeof options !== 'object' || options === null || Array.isArray(options))
    return 'options are an object'
  const ranges: Record<string, [number, number]> = {
    runAfterMs: [0, EFFECT_LIMITS.jobRunAfterMs],
    retries: [0, EFFECT_LIMITS.jobRetries],
    replicas: [1, EFFECT_LIMITS.jobReplicas],
    quorum: [1, EFFECT_LIMITS.jobReplicas],
  }
  for (const [name, v] of Object.entries(options)) {
    const range = ranges[name]
    if (range === undefined)
      return `options have no field "${name.slice(0, 40)}" (runAfterMs, retries, replicas, quorum)`
    if (typeof v !== 'number' || !Number.isInteger(v) || v < range[0] || v > range[1])
      return `options.${name} is a whole number from ${range[0]} to ${range[1]}`
  }
  const { replicas, quorum } = options as JobOptions
  if (replicas !== undefined && quorum !== undefined && quorum > replicas)
    return 'options.quorum is at most options.replicas'
  return undefined
}

/** The name of a function's export: a JavaScript identifier (content's ExportNameSchema). */
const EXPORT_NAME = /^[A-Za-z_$][A-Za-z0-9_$]*$/
const EXPORT_NAME_CHARS = 128

/** Why `text` is not a function's export name, or undefined. */
export function exportNameProblem(text: string): string | undefined {
  return text.length <= EXPORT_NAME_CHARS && EXPORT_NAME.test(text)
    ? undefined
    : `an export name is a JavaScript identifier of at most ${EXPORT_NAME_CHARS} characters`
}

/**
 * An argument as the engine hands it over from the sandbox: the string, or, for anything else, a
 * word saying what it was. A string longer than the engine's cap for that argument arrives as its
 * length, so that a 100 MB string is refused without being copied, and one with a lone surrogate
 * (which the copy out of the sandbox would turn into U+FFFD) as `illFormed`.
 */
export type HostArg = string | { type: string } | { length: number } | { illFormed: true }

/** One read the host is asked for. */
export interface ReadRequest {
  ns: string
  key: string
}

/**
 * The host's answer to one read, as the pool hands it to the engine: the version, the value's
 * DAG-CBOR size, and its JSON (left out when the value is larger than a value may be).
 */
export interface ReadAnswer {
  version: number
  bytes: number
  json?: string
}

/**
 * What the sandbox's `store.js` does with a reply, by its first letter: `v` resolve with the JSON
 * that follows, `w` wait for read number … to be answered, `t` throw (or reject with) a
 * TypeError, `r` a RangeError, `e` an Error, `x` spin until the engine's interrupt ends the call
 * (the engine's reply once the call must stop), and an empty reply means done.
 */
type Reply = string

const ok: Reply = ''
const typeError = (message: string): Reply => `t${message}`
const rangeError = (message: string): Reply => `r${message}`

function shown(arg: HostArg): string {
  if (typeof arg === 'string') return JSON.stringify(arg.length > 40 ? `${arg.slice(0, 40)}…` : arg)
  if ('length' in arg) return `a string of ${arg.length} characters`
  if ('illFormed' in arg) return 'a string with a lone surrogate'
  return arg.type === 'undefined' ? 'undefined' : `${/^[aeiou]/.test(arg.type) ? 'an' : 'a'} ${arg.type}`
}

interface Read extends ReadRequest {
  /** set once answered */
  version?: number
  /** the reply every later get of this key gets */
  reply?: Reply
  /** gets waiting for the answer: each is handed its own copy of the value */
  waiters: number
}

interface Written extends ReadRequest {
  json: string
  bytes: number
}

/**
 * One call's record. The engine calls {@link get}, {@link write} and {@link enqueue} from the host
 * function the prelude's `store.js` calls, hands the reads it holds to the host between job runs
 * ({@link takeReads}), and delivers the answers in request order ({@link deliver}).
 */
export class CallEffects {
  readonly #canRead: boolean
  readonly #writes = new Map<string, Written>()
  #writtenBytes = 0
  readonly #reads: Read[] = []
  readonly #readIndex = new Map<string, number>()
  #readBytes = 0
  #sent = 0
  readonly #jobs: EffectJob[] = []
  /** JSON characters moved between the sandbox and the host so far: the engine charges them as fuel */
  moved = 0

  /** @param canRead whether the call has a host that answers reads */
  constructor(canRead: boolean) {
    this.#canRead = canRead
  }

  /** `ctx.store.get(ns, key)`. */
  get(ns: HostArg, key: HostArg): Reply {
    const bad = this.#address('get', ns, key)
    if (bad !== undefined) return bad
    const id = (ns as string) + (key as string)
    const written = this.#writes.get(id)
    if (written !== undefined) return this.#value(written.json)
    const n = this.#readIndex.get(id)
    if (n !== undefined) {
      const read = this.#reads[n]
      if (read.reply !== undefined)
        return read.reply[0] === 'v' ? this.#value(read.reply.slice(1)) : read.reply
      read.waiters++
      return `w${n}`
    }
    if (!this.#canRead)
      return 'ectx.store.get: this call has no datastore to read from. On the network, reads come from the namespace’s holders at the versions the request fixes; locally, give values with `covenant sandbox --store values.json`'
    if (this.#reads.length >= EFFECT_LIMITS.reads)
      return rangeError(`ctx.store.get: a call reads at most ${EFFECT_LIMITS.reads} keys`)
    this.#readIndex.set(id, this.#reads.length)
    this.#reads.push({ ns: ns as string, key: key as string, waiters: 1 })
    return `w${this.#reads.length - 1}`
  }

  /**
   * `ctx.store.put(ns, key, value)` with the value's JSON (undefined when JSON.stringify gave
   * none), or `ctx.store.delete(ns, key)`.
   */
  write(op: 'put' | 'delete', ns: HostArg, key: HostArg, json?: HostArg): Reply {
    const bad = this.#address(op, ns, key)
    if (bad !== undefined) return bad
    let text = 'null'
    let bytes = 0
    if (op === 'put') {
      if (json !== undefined && typeof json !== 'string' && 'length' in json)
        return this.#tooLarge(`its JSON has ${json.length} characters`)
      if (typeof json !== 'string')
        return typeError(
          'ctx.store.put: the value is not a JSON value (undefined, a function or a symbol); use ctx.store.delete(ns, key) to remove a key',
        )
      this.moved += json.length
      const value = JSON.parse(json) as JsonValue
      const size = dagCborSize(value)
      if (size === undefined)
        return rangeError(`ctx.store.put: a value nests at most ${EFFECT_LIMITS.jsonDepth} deep`)
      if (size > EFFECT_LIMITS.valueBytes) return this.#tooLarge(`this one is ${size}`)
      text = json
      bytes = size
    }
    const id = (ns as string) + (key as string)
    const before = this.#writes.get(id)
    if (before === undefined && this.#writes.size >= EFFECT_LIMITS.writes)
      return rangeError(`ctx.store.${op}: a call writes at most ${EFFECT_LIMITS.writes} keys`)
    const total = this.#writtenBytes - (before?.bytes ?? 0) + bytes
    if (total > EFFECT_LIMITS.writeBytes)
      return rangeError(
        `ctx.store.${op}: a call writes at most ${EFFECT_LIMITS.writeBytes} bytes of values (DAG-CBOR); this write would make ${total}`,
      )
    this.#writtenBytes = total
    // last write wins, in the place of the first
    if (before === undefined)
      this.#writes.set(id, { ns: ns as string, key: key as string, json: text, bytes })
    else Object.assign(before, { json: text, bytes })
    return ok
  }

  /** `ctx.enqueue(fn, exportName, args, options)` with the JSON of `args` and of `options`. */
  enqueue(fn: HostArg, exportName: HostArg, argsJson: HostArg, optionsJson: HostArg): Reply {
    if (!isCidText(fn))
      return typeError(
        `ctx.enqueue: fn is a function's manifest CID (CIDv1 dag-cbor in base32, bafyrei…), not ${shown(fn)}`,
      )
    if (typeof exportName !== 'string')
      return typeError(`ctx.enqueue: the export name is a string, not ${shown(exportName)}`)
    const nameProblem = exportNameProblem(exportName)
    if (nameProblem !== undefined) return typeError(`ctx.enqueue: ${nameProblem}`)
    if (typeof argsJson !== 'string') {
      return 'length' in argsJson
        ? rangeError(`ctx.enqueue: a job's arguments are at most ${EFFECT_LIMITS.jobArgsBytes} bytes of JSON`)
        : typeError('ctx.enqueue: args is an array of JSON values')
    }
    const args = JSON.parse(argsJson) as JsonValue
    this.moved += argsJson.length
    if (!Array.isArray(args)) return typeError('ctx.enqueue: args is an array of JSON values')
    if (utf8Length(argsJson) > EFFECT_LIMITS.jobArgsBytes)
      return rangeError(
        `ctx.enqueue: a job's arguments are at most ${EFFECT_LIMITS.jobArgsBytes} bytes of JSON`,
      )
    if (!isJsonValue(args))
      return rangeError(`ctx.enqueue: a job's arguments nest at most ${EFFECT_LIMITS.jsonDepth} deep`)
    let options: JobOptions = {}
    if (typeof optionsJson === 'string') {
      options = JSON.parse(optionsJson) as JobOptions
      const problem = jobOptionsProblem(options)
      if (problem !== undefined) return typeError(`ctx.enqueue: ${problem}`)
    } else if (!('type' in optionsJson && optionsJson.type === 'undefined')) {
      return typeError('ctx.enqueue: options are an object: { runAfterMs?, retries?, replicas?, quorum? }')
    }
    if (this.#jobs.length >= EFFECT_LIMITS.jobs)
      return rangeError(`ctx.enqueue: a call enqueues at most ${EFFECT_LIMITS.jobs} jobs`)
    this.#jobs.push({ fn, export: exportName, args, options })
    return ok
  }

  /** The reads asked for since the last take, in the order the function asked. */
  takeReads(): Array<ReadRequest & { n: number }> {
    const batch = this.#reads.slice(this.#sent).map((r, i) => ({ n: this.#sent + i, ns: r.ns, key: r.key }))
    this.#sent = this.#reads.length
    return batch
  }

  /**
   * Records the host's answer to read `n` and returns the reply every get waiting for it gets. A value
   * larger than a value may be, or one past the call's read budget, is a RangeError for the
   * function (deterministic: answers are delivered in request order); the read still counts, at
   * its version, since what the function saw depends on it.
   */
  deliver(n: number, answer: ReadAnswer): Reply {
    const read = this.#reads[n]
    read.version = answer.version
    const where = `${JSON.stringify(read.key)} of ${read.ns}`
    if (answer.json === undefined || answer.bytes > EFFECT_LIMITS.valueBytes)
      read.reply = rangeError(
        `ctx.store.get: the value of ${where} is ${answer.bytes} bytes (DAG-CBOR), more than the ${EFFECT_LIMITS.valueBytes} a value may be`,
      )
    else if (this.#readBytes + answer.bytes > EFFECT_LIMITS.readBytes)
      read.reply = rangeError(
        `ctx.store.get: a call reads at most ${EFFECT_LIMITS.readBytes} bytes of values (DAG-CBOR); reading ${where} would make ${this.#readBytes + answer.bytes}`,
      )
    else {
      this.#readBytes += answer.bytes
      read.reply = `v${answer.json}`
      this.moved += answer.json.length * read.waiters
    }
    read.waiters = 0
    return read.reply
  }

  /** What the call recorded, or undefined if nothing: reads answered, writes and jobs. */
  result(): SandboxEffects | undefined {
    const reads = this.#reads
      .filter((r) => r.version !== undefined)
      .map((r) => ({ ns: r.ns, key: r.key, version: r.version! }))
    if (reads.length === 0 && this.#writes.size === 0 && this.#jobs.length === 0) return undefined
    const writes = [...this.#writes.values()].map((w) => ({
      ns: w.ns,
      key: w.key,
      value: JSON.parse(w.json) as JsonValue,
    }))
    return { reads, writes, jobs: this.#jobs }
  }

  #value(json: string): Reply {
    this.moved += json.length
    return `v${json}`
  }

  #tooLarge(what: string): Reply {
    return rangeError(
      `ctx.store.put: a value is at most ${EFFECT_LIMITS.valueBytes} bytes (DAG-CBOR); ${what}`,
    )
  }

  /** The reply refusing a bad namespace or key, or undefined if both are good. */
  #address(op: string, ns: HostArg, key: HostArg): Reply | undefined {
    if (!isCidText(ns))
      return typeError(
        `ctx.store.${op}: ns is a namespace id (a CIDv1 dag-cbor CID in base32, bafyrei…), not ${shown(ns)}`,
      )
    if (
      typeof key === 'string' &&
      key.length <= EFFECT_LIMITS.keyBytes &&
      utf8Length(key) <= EFFECT_LIMITS.keyBytes
    ) {
      const problem = keyProblem(key)
      return problem === undefined ? undefined : typeError(`ctx.store.${op}: ${problem}`)
    }
    if (typeof key === 'string' || 'length' in key)
      return rangeError(`ctx.store.${op}: a key is at most ${EFFECT_LIMITS.keyBytes} UTF-8 bytes`)
    if ('illFormed' in key)
      return typeError(`ctx.store.${op}: a key is well-formed Unicode (no lone surrogate)`)
    return typeError(`ctx.store.${op}: the key is a string, not ${shown(key)}`)
  }
}
