/**
 * Conflict evidence a node has verified, kept in SQLite (`<data>/conflicts.db`) so it survives
 * restarts. Evidence is checked on the way in against the node's own view (verifyConflict: a
 * certificate for the other output that the view backs, an accused executor of that view), so
 * throwaway keys can neither frame an executor nor fill the store. One row per (request id,
 * accused executor): storing the same evidence twice is a no-op. Bounded: beyond `maxEntries`
 * rows or `maxBytes` the oldest rows are dropped, so reports cannot fill a disk.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { z } from 'zod'
import type { Manifest } from '../../content/index.ts'
import { CovenantError } from '../../errors/index.ts'
import {
  type Conflict,
  ConflictSchema,
  type SkipEvidence,
  skipEvidence,
  type View,
  verifyConflict,
} from '../../exec/index.ts'
import { openSqlite } from '../../sqlite/index.ts'

export interface ConflictStoreInit {
  /** a file path, or `':memory:'`; the parent directory is created */
  path: string
  /** the network as this node sees it: evidence is checked against it */
  view: () => View
  /** a function's manifest by its CID, checked against it */
  manifest: (fn: string) => Promise<Manifest>
  /** rows kept; the oldest go first @default 10000 */
  maxEntries?: number
  /** bytes of evidence kept (a certificate carries its request's arguments); the oldest go first @default 256 MiB */
  maxBytes?: number
  /** @default Date.now */
  now?: () => number
}

export interface StoredConflict {
  conflict: Conflict
  /** ms timestamp of when this node first stored it */
  receivedAt: number
}

export interface ConflictStore {
  /** Verifies (INVALID_CONFLICT) and stores `conflict`; true if it was new. */
  add(conflict: unknown): Promise<boolean>
  /** Newest first; `executor` filters by the accused; at most `limit` (default 100, capped at 1000). */
  list(opts?: { executor?: string; limit?: number }): StoredConflict[]
  /** Conflicts held against each executor. */
  counts(): Map<string, number>
  /**
   * Evidence held against `executor` that a certificate's skip may carry (see exec's
   * `skipEvidence`): a gateway does not ask an executor it holds such evidence against.
   */
  evidenceAgainst(executor: string): SkipEvidence | undefined
  size(): number
  close(): void
}

const SCHEMA = `CREATE TABLE conflicts (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  request TEXT NOT NULL,
  executor TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  size INTEGER NOT NULL,
  body BLOB NOT NULL,
  UNIQUE (request, executor)
) STRICT;
CREATE INDEX conflicts_executor ON conflicts (executor, seq);`

/**
 * The schema's steps: evidence of format 1 had no certificate and cannot be checked any more, so
 * step 2 drops whatever a file held and starts again.
 */
const MIGRATIONS = ['-- format 1, dropped by the next step', `DROP TABLE IF EXISTS conflicts; ${SCHEMA}`]

export function openConflictStore(init: ConflictStoreInit): ConflictStore {
  const db = openSqlite(init.path, 'evidence store', MIGRATIONS)
  const maxEntries = init.maxEntries ?? 10_000
  const maxBytes = init.maxBytes ?? 256 * 1024 * 1024
  const now = init.now ?? Date.now
  const insert = db.prepare(
    'INSERT OR IGNORE INTO conflicts (request, executor, received_at, size, body) VALUES (?, ?, ?, ?, ?)',
  )
  const prune = db.prepare(
    'DELETE FROM conflicts WHERE seq <= (SELECT seq FROM conflicts ORDER BY seq DESC LIMIT 1 OFFSET ?)',
  )
  const pruneBytes = db.prepare(
    `DELETE FROM conflicts WHERE seq IN (SELECT seq FROM
       (SELECT seq, SUM(size) OVER (ORDER BY seq DESC) AS total FROM conflicts) WHERE total > ?)`,
  )
  const listAll = db.prepare('SELECT body, received_at FROM conflicts ORDER BY seq DESC LIMIT ?')
  const listBy = db.prepare(
    'SELECT body, received_at FROM conflicts WHERE executor = ? ORDER BY seq DESC LIMIT ?',
  )
  const countBy = db.prepare('SELECT executor, COUNT(*) AS n FROM conflicts GROUP BY executor')
  const countAll = db.prepare('SELECT COUNT(*) AS n FROM conflicts')

  async function verify(value: unknown): Promise<Conflict> {
    const parsed = ConflictSchema.safeParse(value)
    if (!parsed.success)
      throw new CovenantError('INVALID_CONFLICT', `malformed conflict: ${z.prettifyError(parsed.error)}`)
    let manifest: Manifest
    try {
      manifest = await init.manifest(parsed.data.certificate.request.fn)
    } catch (err) {
      throw new CovenantError('INVALID_CONFLICT', 'the function of the evidence cannot be had', {
        cause: err,
      })
    }
    return verifyConflict(parsed.data, { view: init.view(), manifest }).conflict
  }

  // The gateway asks for every executor it ranks, on every call: remembered per executor (none
  // included) until new evidence against it arrives.
  const evidence = new Map<string, SkipEvidence | null>()
  const EVIDENCE_KEPT = 4096

  const decode = (row: Record<string, unknown>): StoredConflict => ({
    // Rows were verified before they were written; parsing keeps the types honest.
    conflict: ConflictSchema.parse(dagCbor.decode(row.body as Uint8Array)),
    receivedAt: Number(row.received_at),
  })

  return {
    async add(value) {
      const conflict = await verify(value)
      const { request, executor } = conflict.receipt
      const body = dagCbor.encode(conflict)
      const result = insert.run(request, executor, now(), body.length, body)
      if (Number(result.changes) === 0) return false
      evidence.delete(executor)
      prune.run(maxEntries)
      pruneBytes.run(maxBytes)
      return true
    },
    list(opts = {}) {
      const limit = Math.min(Math.max(1, opts.limit ?? 100), 1000)
      const rows = opts.executor === undefined ? listAll.all(limit) : listBy.all(opts.executor, limit)
      return rows.map(decode)
    },
    counts() {
      const out = new Map<string, number>()
      for (const row of countBy.all()) out.set(String(row.executor), Number(row.n))
      return out
    },
    evidenceAgainst(executor) {
      const known = evidence.get(executor)
      if (known !== undefined) return known ?? undefined
      let found: SkipEvidence | null = null
      for (const row of listBy.all(executor, 16)) {
        const usable = skipEvidence(decode(row).conflict)
        if (usable !== undefined) {
          found = usable
          break
        }
      }
      if (evidence.size >= EVIDENCE_KEPT) evidence.delete(evidence.keys().next().value as string)
      evidence.set(executor, found)
      return found ?? undefined
    },
    size() {
      return Number((countAll.get() as { n: number }).n)
    },
    close() {
      db.close()
    },
  }
}
