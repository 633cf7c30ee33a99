/**
 * Which bundles a worker holds, by content hash. The pool and each worker keep one of these and
 * apply the same operations in the same order, so the pool knows without asking whether a worker
 * already has a bundle and can skip copying its source (up to 5 MiB) into the worker again.
 */
export class BundleCache {
  readonly #entries = new Map<string, { chars: number; code: string }>()
  readonly #maxEntries: number
  readonly #maxChars: number
  #chars = 0

  constructor(maxEntries = 32, maxChars = 32 * 1024 * 1024) {
    this.#maxEntries = maxEntries
    this.#maxChars = maxChars
  }

  get size(): number {
    return this.#entries.size
  }

  has(hash: string): boolean {
    return this.#entries.has(hash)
  }

  /** Returns the code and marks it most recently used. */
  get(hash: string): string | undefined {
    const entry = this.#entries.get(hash)
    if (entry === undefined) return undefined
    this.#entries.delete(hash)
    this.#entries.set(hash, entry)
    return entry.code
  }

  /**
   * Stores (or refreshes) a bundle, evicting the least recently used beyond the bounds. The pool's
   * mirror passes only the length (`code` empty); the worker passes the source too.
   */
  put(hash: string, chars: number, code = ''): void {
    if (this.get(hash) !== undefined) return
    this.#entries.set(hash, { chars, code })
    this.#chars += chars
    for (const [h, e] of this.#entries) {
      if (this.#entries.size <= this.#maxEntries && this.#chars <= this.#maxChars) break
      if (h === hash) continue
      this.#entries.delete(h)
      this.#chars -= e.chars
    }
  }
}
