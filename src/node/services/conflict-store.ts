/**
 * Conflict evidence a node has verified, kept in SQLite (`<data>/conflicts.db`) so it survives
 * restarts. One row per (request id, accused executor): storing the same evidence twice is a
 * no-op. Bounded: beyond `maxEntries` the oldest rows are dropped, so reports cannot fill a disk.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import * as dagCbor from '@ipld/dag-cbor'
import { type Conflict, verifyConflict } from '../../exec/index.ts'

export interface ConflictStoreInit {
  /** a file path, or `':memory:'`; the parent directory is created */
  path: string
  /** rows kept; the oldest go first @default 10000 */
  maxEntries?: number
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
  add(conflict: unknown): boolean
  /** Newest first; `executor` filters by the accused; at most `limit` (default 100, capped at 1000). */
  list(opts?: { executor?: string; limit?: number }): StoredConflict[]
  /** Conflicts held against each executor. */
  counts(): Map<string, number>
  size(): number
  close(): void
}

const SCHEMA = `CREATE TABLE IF NOT EXISTS conflicts (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  request TEXT NOT NULL,
  executor TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  body BLOB NOT NULL,
  UNIQUE (request, executor)
) STRICT;
CREATE INDEX IF NOT EXISTS conflicts_executor ON conflicts (executor, seq);`

export function openConflictStore(init: ConflictStoreInit): ConflictStore {
  if (init.path !== ':memory:') mkdirSync(dirname(init.path), { recursive: true })
  const db = new DatabaseSync(init.path)
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;')
  db.exec(SCHEMA)
  const maxEntries = init.maxEntries ?? 10_000
  const now = init.now ?? Date.now
  const insert = db.prepare(
    'INSERT OR IGNORE INTO conflicts (request, executor, received_at, body) VALUES (?, ?, ?, ?)',
  )
  const prune = db.prepare(
    'DELETE FROM conflicts WHERE seq <= (SELECT seq FROM conflicts ORDER BY seq DESC LIMIT 1 OFFSET ?)',
  )
  const listAll = db.prepare('SELECT body, received_at FROM conflicts ORDER BY seq DESC LIMIT ?')
  const listBy = db.prepare(
    'SELECT body, received_at FROM conflicts WHERE executor = ? ORDER BY seq DESC LIMIT ?',
  )
  const countBy = db.prepare('SELECT executor, COUNT(*) AS n FROM conflicts GROUP BY executor')
  const countAll = db.prepare('SELECT COUNT(*) AS n FROM conflicts')

  const decode = (row: Record<string, unknown>): StoredConflict => ({
    // Rows were verified before they were written; re-parsing keeps the types honest.
    conflict: verifyConflict(dagCbor.decode(row.body as Uint8Array)).conflict,
    receivedAt: Number(row.received_at),
  })

  return {
    add(value) {
      const { conflict } = verifyConflict(value)
      const result = insert.run(conflict.request, conflict.executor, now(), dagCbor.encode(conflict))
      if (Number(result.changes) === 0) return false
      prune.run(maxEntries)
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
    size() {
      return Number((countAll.get() as { n: number }).n)
    },
    close() {
      db.close()
    },
  }
}
