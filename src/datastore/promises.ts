/**
 * One entry per seq: what a holder promised a primary. A holder that checked or took an entry at
 * a seq for one primary refuses another primary's different entry there (`ENTRY_PROMISED`) for a
 * while, or until that primary is dead in its view: two primaries at once never both find a
 * majority that took their entries at one seq. The same primary may replace its own offer, and
 * the same commit (by its id: a gateway that lost the primary sends it to the next holder) may
 * come from another. A promise with no entry (`cid` '') is a fence: the holder takes no entry at
 * that seq while an asker decides a fork on its answer. Pure bookkeeping: the node's datastore
 * service keeps one book, in memory.
 */
import { CovenantError } from '../errors/index.ts'

/**
 * How long a promise stands, unless its primary leaves the holder's view first: a primary that
 * died blocks the seq no longer than this.
 */
export const PROMISE_MS = 15_000

/** An entry promised at a seq: its CID ('' for a fence) and its commit id ('' for a fence). */
export interface Promised {
  seq: number
  cid: string
  id: string
}

/** A promise standing: the entry and the primary (or asker) it was made to. */
export type StandingPromise = Promised & { to: string }

export interface PromiseBookInit {
  /** this node's id: its own promises (as primary) stand while it does */
  self: string
  /** whether a peer is alive in this node's view: a dead primary's promise lapses */
  alive: (peer: string) => boolean
  /** how long a promise stands @default {@link PROMISE_MS} */
  ttlMs?: number
  /** most namespaces with a promise kept (the oldest forgotten first) */
  max: number
  /** the clock @default Date.now */
  now?: () => number
}

export interface PromiseBook {
  /** The promise standing at `seq` of `ns`: not expired, and made to this node or a live peer. */
  at(ns: string, seq: number): StandingPromise | undefined
  /** Throws ENTRY_PROMISED if `to` may not have `entry` at its seq: it is promised to another's other entry. */
  keep(ns: string, entry: Promised, to: string): void
  /** Promises `entry` to `to`, replacing the namespace's promise (one per namespace: the newest seq offered). */
  promise(ns: string, entry: Promised, to: string): void
  /** The namespace's last promise, standing or not. */
  last(ns: string): StandingPromise | undefined
  forget(ns: string): void
}

/** A holder's promises, one per namespace. */
export function createPromiseBook(init: PromiseBookInit): PromiseBook {
  const ttlMs = init.ttlMs ?? PROMISE_MS
  const max = init.max
  const now = init.now ?? Date.now
  const promises = new Map<string, StandingPromise & { until: number }>()

  function at(ns: string, seq: number): StandingPromise | undefined {
    const p = promises.get(ns)
    if (p === undefined || p.seq !== seq) return undefined
    if (now() < p.until && (p.to === init.self || init.alive(p.to))) return p
    promises.delete(ns)
    return undefined
  }

  return {
    at,
    keep(ns, entry, to) {
      const p = at(ns, entry.seq)
      if (p !== undefined && p.to !== to && p.cid !== entry.cid && p.id !== entry.id)
        throw new CovenantError(
          'ENTRY_PROMISED',
          `seq ${entry.seq} of ${ns} is promised to ${p.cid === '' ? 'no entry while a fork is decided' : `${p.cid} of ${p.to}`}`,
        )
    },
    promise(ns, entry, to) {
      promises.delete(ns)
      if (promises.size >= max) promises.delete(promises.keys().next().value as string)
      promises.set(ns, { seq: entry.seq, cid: entry.cid, id: entry.id, to, until: now() + ttlMs })
    },
    last: (ns) => promises.get(ns),
    forget(ns) {
      promises.delete(ns)
    },
  }
}
