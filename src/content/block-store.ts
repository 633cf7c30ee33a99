import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import type { CID } from 'multiformats/cid'
import { z } from 'zod'
import { CovenantError } from '../errors/index.ts'
import { assertBlock, isSupportedCid, MAX_BLOCK_BYTES, verifyBlock } from './cid.ts'
import { normalizeTags, TagSchema } from './tags.ts'

export interface BlockMeta {
  tags: string[]
  pinned?: boolean
}

export interface StoredBlockInfo {
  cid: string
  size: number
  tags: string[]
  pinned: boolean
  createdAt: number
}

export interface BlockStore {
  /**
   * Stores a block. Verifies its hash (HASH_MISMATCH) and size (BLOCK_TOO_LARGE). Idempotent: a
   * second put of the same block merges its tags and keeps it pinned if either put pinned it.
   */
  put(cid: CID, bytes: Uint8Array, meta?: BlockMeta): void
  /** The block's bytes, verified against the CID; a corrupted row is deleted, reported, and `undefined`. */
  get(cid: CID): Uint8Array | undefined
  /** True if a row exists; cheap (does not re-hash), so a corrupted row counts until `get` finds it. */
  has(cid: CID): boolean
  info(cid: CID): StoredBlockInfo | undefined
  delete(cid: CID): boolean
  /** Blocks in CID string order, `after` exclusive; at most `limit` (default 1000, capped at 10000). */
  list(opts?: { limit?: number; after?: string }): StoredBlockInfo[]
  stats(): { blocks: number; bytes: number }
  close(): void
}

export interface BlockStoreInit {
  /** A file path, or `':memory:'`. The parent directory is created if missing. */
  path: string
  /** Called when a stored row no longer hashes to its CID (disk corruption, tampering). */
  onCorrupt?: (cid: string, reason: string) => void
  /** Clock for `created_at` / `last_access`, in ms. @default Date.now */
  now?: () => number
}

const BlockMetaSchema = z.strictObject({
  tags: z.array(TagSchema).max(256),
  pinned: z.boolean().optional(),
})

/** The schema version this code writes; `PRAGMA user_version` records what a file holds. */
export const BLOCK_STORE_SCHEMA_VERSION = 1

// Each entry migrates from version i to i + 1. Append only: a released migration never changes.
const MIGRATIONS: string[] = [
  `CREATE TABLE blocks (
     cid TEXT PRIMARY KEY,
     bytes BLOB NOT NULL,
     size INTEGER NOT NULL,
     tags TEXT NOT NULL DEFAULT '[]',
     pinned INTEGER NOT NULL DEFAULT 0,
     created_at INTEGER NOT NULL,
     last_access INTEGER NOT NULL
   ) STRICT;
   CREATE INDEX blocks_last_access ON blocks (last_access);`,
]

interface Row {
  cid: string
  size: number
  tags: string
  pinned: number
  created_at: number
}

function parseTags(json: string): string[] {
  try {
    const parsed = z.array(z.string()).safeParse(JSON.parse(json))
    return parsed.success ? parsed.data : []
  } catch {
    return []
  }
}

function toInfo(row: Row): StoredBlockInfo {
  return {
    cid: row.cid,
    size: Number(row.size),
    tags: parseTags(row.tags),
    pinned: Number(row.pinned) !== 0,
    createdAt: Number(row.created_at),
  }
}

function migrate(db: DatabaseSync, path: string): void {
  const { user_version: current } = db.prepare('PRAGMA user_version').get() as { user_version: number }
  if (current > MIGRATIONS.length)
    throw new CovenantError(
      'INTERNAL',
      `block store ${path} has schema version ${current}, newer than this code knows (${MIGRATIONS.length})`,
    )
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.exec('BEGIN IMMEDIATE')
    try {
      db.exec(MIGRATIONS[v])
      db.exec(`PRAGMA user_version = ${v + 1}`)
      db.exec('COMMIT')
    } catch (err) {
      db.exec('ROLLBACK')
      throw err
    }
  }
}

/**
 * Opens (creating if needed) a block store in one SQLite file. Every block is verified against
 * its CID when written and again when read, so the store never serves bytes that are not what
 * their name says.
 */
export function openBlockStore(init: BlockStoreInit): BlockStore {
  const now = init.now ?? Date.now
  if (init.path !== ':memory:') mkdirSync(dirname(init.path), { recursive: true })
  const db = new DatabaseSync(init.path)
  try {
    // WAL + NORMAL: durable across process crashes, loses at most the last commits on power loss,
    // and readers never wait for the writer.
    db.exec('PRAGMA journal_mode = WAL')
    db.exec('PRAGMA synchronous = NORMAL')
    db.exec('PRAGMA busy_timeout = 5000')
    migrate(db, init.path)
  } catch (err) {
    db.close()
    throw err
  }

  const stmt = {
    select: db.prepare('SELECT bytes FROM blocks WHERE cid = ?'),
    meta: db.prepare('SELECT cid, size, tags, pinned, created_at FROM blocks WHERE cid = ?'),
    has: db.prepare('SELECT 1 AS x FROM blocks WHERE cid = ?'),
    insert: db.prepare(
      'INSERT INTO blocks (cid, bytes, size, tags, pinned, created_at, last_access) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    updateMeta: db.prepare('UPDATE blocks SET tags = ?, pinned = ? WHERE cid = ?'),
    replaceBytes: db.prepare('UPDATE blocks SET bytes = ?, size = ? WHERE cid = ?'),
    touch: db.prepare('UPDATE blocks SET last_access = ? WHERE cid = ?'),
    delete: db.prepare('DELETE FROM blocks WHERE cid = ?'),
    list: db.prepare(
      'SELECT cid, size, tags, pinned, created_at FROM blocks WHERE cid > ? ORDER BY cid LIMIT ?',
    ),
    stats: db.prepare('SELECT count(*) AS blocks, coalesce(sum(size), 0) AS bytes FROM blocks'),
  } satisfies Record<string, StatementSync>

  let closed = false
  const open = (): void => {
    if (closed) throw new CovenantError('NOT_STARTED', 'the block store is closed')
  }

  const transaction = <T>(body: () => T): T => {
    db.exec('BEGIN IMMEDIATE')
    try {
      const result = body()
      db.exec('COMMIT')
      return result
    } catch (err) {
      db.exec('ROLLBACK')
      throw err
    }
  }

  const checkCid = (cid: CID): string => {
    if (!isSupportedCid(cid)) throw new CovenantError('INVALID_CID', `unsupported CID ${cid}`)
    return cid.toString()
  }

  return {
    put(cid, bytes, meta = { tags: [] }) {
      open()
      const key = checkCid(cid)
      if (!(bytes instanceof Uint8Array))
        throw new CovenantError('INVALID_INPUT', 'block bytes must be bytes')
      if (bytes.length > MAX_BLOCK_BYTES)
        throw new CovenantError(
          'BLOCK_TOO_LARGE',
          `block of ${bytes.length} bytes is larger than the ${MAX_BLOCK_BYTES} allowed`,
        )
      const parsed = BlockMetaSchema.safeParse(meta)
      if (!parsed.success)
        throw new CovenantError('INVALID_INPUT', `invalid block metadata: ${z.prettifyError(parsed.error)}`)
      assertBlock(cid, bytes)
      const tags = normalizeTags(parsed.data.tags)
      const pinned = parsed.data.pinned === true
      transaction(() => {
        const existing = stmt.meta.get(key) as Row | undefined
        if (existing === undefined) {
          const t = now()
          stmt.insert.run(key, bytes, bytes.length, JSON.stringify(tags), pinned ? 1 : 0, t, t)
          return
        }
        const merged = normalizeTags([...parseTags(existing.tags), ...tags])
        stmt.updateMeta.run(JSON.stringify(merged), pinned || Number(existing.pinned) !== 0 ? 1 : 0, key)
        // A put with verified bytes heals a row that was corrupted on disk.
        const row = stmt.select.get(key) as { bytes: Uint8Array } | undefined
        if (row === undefined || !verifyBlock(cid, row.bytes)) stmt.replaceBytes.run(bytes, bytes.length, key)
      })
    },

    get(cid) {
      open()
      if (!isSupportedCid(cid)) return undefined
      const key = cid.toString()
      const row = stmt.select.get(key) as { bytes: Uint8Array } | undefined
      if (row === undefined) return undefined
      if (!verifyBlock(cid, row.bytes)) {
        // Never serve it; drop it so the block can be fetched again from a replica.
        stmt.delete.run(key)
        init.onCorrupt?.(key, 'stored bytes do not hash to the CID')
        return undefined
      }
      stmt.touch.run(now(), key)
      return new Uint8Array(row.bytes)
    },

    has(cid) {
      open()
      if (!isSupportedCid(cid)) return false
      return stmt.has.get(cid.toString()) !== undefined
    },

    info(cid) {
      open()
      if (!isSupportedCid(cid)) return undefined
      const row = stmt.meta.get(cid.toString()) as Row | undefined
      return row === undefined ? undefined : toInfo(row)
    },

    delete(cid) {
      open()
      if (!isSupportedCid(cid)) return false
      return Number(stmt.delete.run(cid.toString()).changes) > 0
    },

    list(opts = {}) {
      open()
      const requested = opts.limit ?? 1000
      const limit = Number.isFinite(requested) ? Math.max(0, Math.min(Math.floor(requested), 10_000)) : 1000
      const rows = stmt.list.all(opts.after ?? '', limit) as unknown as Row[]
      return rows.map(toInfo)
    },

    stats() {
      open()
      const row = stmt.stats.get() as { blocks: number; bytes: number }
      return { blocks: Number(row.blocks), bytes: Number(row.bytes) }
    },

    close() {
      if (closed) return
      closed = true
      db.close()
    },
  }
}
