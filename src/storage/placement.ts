/**
 * What storage remembers to decide where blocks go without redoing work per block: peer positions
 * in the key space, peers that refused a block or were full (with a growing backoff), and how much
 * each peer put here that this node would not hold otherwise.
 */

import { compareDistance, peerPosition, xorDistance } from '../covenant/index.ts'
import { sha256 } from '../encoding/index.ts'
import type { CovenantError } from '../errors/index.ts'

/** Positions kept before the cache starts over (peer ids come and go). */
const MAX_POSITIONS = 8192

/**
 * Peer positions (sha256 of the peer id's multihash), each computed once: ranking a block's
 * holders then costs a XOR and a compare per peer, not a parse and a hash. The order is exactly
 * `closestPeers`'s, so every node that runs this ranks alike.
 */
export class Positions {
  readonly #cache = new Map<string, Uint8Array>()

  of(id: string): Uint8Array {
    let position = this.#cache.get(id)
    if (position === undefined) {
      if (this.#cache.size >= MAX_POSITIONS) this.#cache.clear()
      position = peerPosition(id)
      this.#cache.set(id, position)
    }
    return position
  }

  /** `ids` ordered by XOR distance of their positions to sha256(`key`), nearest first. */
  rank(key: Uint8Array, ids: Iterable<string>): string[] {
    const target = sha256(key)
    const ranked = [...new Set(ids)].map((id) => ({ id, d: xorDistance(this.of(id), target) }))
    ranked.sort((a, b) => compareDistance(a.d, b.d))
    return ranked.map((r) => r.id)
  }
}

interface Backoff {
  until: number
  delayMs: number
}

/**
 * Peers that refused a push, and until when they are not asked again: a full peer for any block,
 * a peer that refused one block (its covenant, or it is not a holder in its own view) for that
 * block. Each repeat doubles the wait, up to `maxMs`; the oldest entries go first when full.
 */
export class Refusals {
  readonly #entries = new Map<string, Backoff>()
  readonly #baseMs: number
  readonly #maxMs: number
  readonly #maxEntries: number
  readonly #now: () => number

  constructor(init: { baseMs: number; maxMs: number; maxEntries: number; now?: () => number }) {
    this.#baseMs = init.baseMs
    this.#maxMs = init.maxMs
    this.#maxEntries = init.maxEntries
    this.#now = init.now ?? Date.now
  }

  /** Remembers a refusal worth waiting out; other failures (a peer down, a timeout) are the peer table's. */
  note(peer: string, cid: string, err: CovenantError): void {
    if (err.code === 'STORAGE_FULL') this.#bump(peer)
    else if (err.code === 'COVENANT_REFUSED' || err.code === 'NOT_A_HOLDER') this.#bump(`${peer} ${cid}`)
  }

  /** True while `peer` should not be sent `cid`. */
  blocked(peer: string, cid: string): boolean {
    const now = this.#now()
    return this.#active(peer, now) || this.#active(`${peer} ${cid}`, now)
  }

  /** How many refusals are remembered. */
  get size(): number {
    return this.#entries.size
  }

  #active(key: string, now: number): boolean {
    const entry = this.#entries.get(key)
    return entry !== undefined && entry.until > now
  }

  #bump(key: string): void {
    const previous = this.#entries.get(key)
    const delayMs = previous === undefined ? this.#baseMs : Math.min(previous.delayMs * 2, this.#maxMs)
    this.#entries.delete(key)
    if (this.#entries.size >= this.#maxEntries)
      this.#entries.delete(this.#entries.keys().next().value as string)
    this.#entries.set(key, { until: this.#now() + delayMs, delayMs })
  }
}

interface Window {
  start: number
  blocks: number
  bytes: number
}

/**
 * What each peer may put here outside this node's share of the key space, per window: room for
 * peers whose view of the network differs, not a way to fill the node.
 */
export class PutQuota {
  readonly #windows = new Map<string, Window>()
  readonly #blocks: number
  readonly #bytes: number
  readonly #windowMs: number
  readonly #now: () => number

  constructor(init: { blocks: number; bytes: number; windowMs: number; now?: () => number }) {
    this.#blocks = init.blocks
    this.#bytes = init.bytes
    this.#windowMs = init.windowMs
    this.#now = init.now ?? Date.now
  }

  /** Counts a block of `size` bytes against `peer`'s quota; false (nothing counted) if it does not fit. */
  take(peer: string, size: number): boolean {
    const now = this.#now()
    let w = this.#windows.get(peer)
    if (w === undefined || now - w.start >= this.#windowMs) {
      w = { start: now, blocks: 0, bytes: 0 }
      // Windows are kept in the order they opened; the stale ones at the front go.
      this.#windows.delete(peer)
      for (const [id, old] of this.#windows) {
        if (now - old.start < this.#windowMs && this.#windows.size < 4096) break
        this.#windows.delete(id)
      }
      this.#windows.set(peer, w)
    }
    if (w.blocks + 1 > this.#blocks || w.bytes + size > this.#bytes) return false
    w.blocks++
    w.bytes += size
    return true
  }
}
