import { decodeManifest, type Manifest, parseCid, verifyBlock } from '../content/index.ts'
import { CovenantError } from '../errors/index.ts'

/**
 * A bounded least-recently-used cache of immutable things fetched by CID (decoded code, manifests).
 * Bounded by entries and by a size measure, so one node cannot be made to hold unbounded code.
 * Concurrent loads of one CID share a single fetch.
 */
export interface CacheStats {
  entries: number
  size: number
  hits: number
  misses: number
}

export class LruCache<V> {
  readonly #entries = new Map<string, { value: V; size: number }>()
  readonly #loading = new Map<string, Promise<V>>()
  readonly #maxEntries: number
  readonly #maxSize: number
  readonly #sizeOf: (value: V) => number
  #size = 0
  #hits = 0
  #misses = 0

  constructor(init: { maxEntries: number; maxSize: number; sizeOf: (value: V) => number }) {
    this.#maxEntries = init.maxEntries
    this.#maxSize = init.maxSize
    this.#sizeOf = init.sizeOf
  }

  /** The cached value for `key`, or what `load` produces (then cached). A failed load is not cached. */
  async get(key: string, load: () => Promise<V>): Promise<V> {
    const hit = this.#entries.get(key)
    if (hit !== undefined) {
      this.#hits++
      // Map iteration order is insertion order: re-inserting marks it most recently used.
      this.#entries.delete(key)
      this.#entries.set(key, hit)
      return hit.value
    }
    const pending = this.#loading.get(key)
    if (pending !== undefined) {
      this.#hits++
      return pending
    }
    this.#misses++
    const promise = load().then((value) => {
      this.#put(key, value)
      return value
    })
    this.#loading.set(key, promise)
    try {
      return await promise
    } finally {
      this.#loading.delete(key)
    }
  }

  #put(key: string, value: V): void {
    const size = this.#sizeOf(value)
    if (size > this.#maxSize) return
    this.#entries.set(key, { value, size })
    this.#size += size
    for (const [k, e] of this.#entries) {
      if (this.#entries.size <= this.#maxEntries && this.#size <= this.#maxSize) break
      this.#entries.delete(k)
      this.#size -= e.size
    }
  }

  stats(): CacheStats {
    return { entries: this.#entries.size, size: this.#size, hits: this.#hits, misses: this.#misses }
  }
}

/**
 * Loads function manifests by CID, each fetched, checked against its CID and decoded once: a
 * manifest is named by its hash, so a cached one is never stale. Concurrent loads share a fetch.
 */
export function createManifestCache(init: {
  getBlock: (cid: string) => Promise<Uint8Array>
  /** @default 1024 */
  maxEntries?: number
}): (fn: string) => Promise<Manifest> {
  const maxEntries = init.maxEntries ?? 1024
  const cache = new LruCache<Manifest>({ maxEntries, maxSize: maxEntries, sizeOf: () => 1 })
  return (fn) =>
    cache.get(fn, async () => {
      const cid = parseCid(fn)
      const bytes = await init.getBlock(fn)
      if (!verifyBlock(cid, bytes))
        throw new CovenantError('HASH_MISMATCH', `the block fetched for ${fn} does not hash to it`)
      return decodeManifest(bytes)
    })
}
