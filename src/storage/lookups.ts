/**
 * The node-wide bound on looking blocks up over the network: at most `max` lookups run at once,
 * up to `queue` more wait their turn, and any beyond are refused at once with PEER_BUSY. Lookups
 * of one block share one, and a block just found missing is answered from memory for `missMs`,
 * so a storm of fetches for unknown CIDs costs the network a bounded amount and the node keeps
 * serving everything else.
 */
import { CovenantError } from '../errors/index.ts'

/** Misses remembered at most; the oldest go first. */
const MAX_MISSES = 4096

export interface LookupsInit {
  max: number
  queue: number
  missMs: number
  now?: () => number
}

export class Lookups {
  readonly #max: number
  readonly #queue: number
  readonly #missMs: number
  readonly #now: () => number
  #active = 0
  readonly #waiting: Array<() => void> = []
  readonly #inflight = new Map<string, Promise<unknown>>()
  readonly #misses = new Map<string, number>()

  constructor(init: LookupsInit) {
    this.#max = init.max
    this.#queue = init.queue
    this.#missMs = init.missMs
    this.#now = init.now ?? Date.now
  }

  /** Lookups running now. */
  get active(): number {
    return this.#active
  }

  /** Lookups waiting for a turn. */
  get queued(): number {
    return this.#waiting.length
  }

  /**
   * Runs `work` for `key` within the bounds, or joins the lookup of `key` already running.
   * Throws PEER_BUSY when the queue is full, PEER_TIMEOUT when `signal` ends the wait for a turn.
   */
  run<T>(key: string, signal: AbortSignal, work: () => Promise<T>): Promise<T> {
    const shared = this.#inflight.get(key)
    if (shared !== undefined) return shared as Promise<T>
    const lookup = this.#admit(signal).then(async () => {
      try {
        return await work()
      } finally {
        this.#release()
      }
    })
    this.#inflight.set(key, lookup)
    lookup.then(
      () => this.#inflight.delete(key),
      () => this.#inflight.delete(key),
    )
    return lookup
  }

  /** True if `key` was found missing less than `missMs` ago. */
  missed(key: string): boolean {
    const until = this.#misses.get(key)
    if (until === undefined) return false
    if (until > this.#now()) return true
    this.#misses.delete(key)
    return false
  }

  /** Remembers that `key` was not found. */
  noteMiss(key: string): void {
    this.#misses.delete(key)
    if (this.#misses.size >= MAX_MISSES) this.#misses.delete(this.#misses.keys().next().value as string)
    this.#misses.set(key, this.#now() + this.#missMs)
  }

  /** Forgets a miss: the block is here now. */
  forget(key: string): void {
    this.#misses.delete(key)
  }

  async #admit(signal: AbortSignal): Promise<void> {
    if (this.#active < this.#max) {
      this.#active++
      return
    }
    if (this.#waiting.length >= this.#queue)
      throw new CovenantError(
        'PEER_BUSY',
        `this node is running ${this.#max} block lookups with ${this.#queue} waiting; try again later`,
      )
    if (signal.aborted) throw waitedTooLong()
    await new Promise<void>((resolve, reject) => {
      const turn = (): void => {
        signal.removeEventListener('abort', giveUp)
        resolve()
      }
      const giveUp = (): void => {
        const i = this.#waiting.indexOf(turn)
        if (i >= 0) this.#waiting.splice(i, 1)
        reject(waitedTooLong())
      }
      this.#waiting.push(turn)
      signal.addEventListener('abort', giveUp, { once: true })
    })
  }

  /** Hands the finished lookup's slot to the next waiting one, or frees it. */
  #release(): void {
    const next = this.#waiting.shift()
    if (next !== undefined) next()
    else this.#active--
  }
}

function waitedTooLong(): CovenantError {
  return new CovenantError('PEER_TIMEOUT', 'the block lookup spent its whole deadline waiting for a turn')
}
