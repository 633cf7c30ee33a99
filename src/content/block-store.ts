import type { DatabaseSync, StatementSync } from 'node:sqlite'
import type { CID } from 'multiformats/cid'
import { z } from 'zod'
import { CovenantError } from '../errors/index.ts'
import { transaction as inTransaction, type Migration, openSqlite } from '../sqlite/index.ts'
import { assertBlock, isSupportedCid, MAX_BLOCK_BYTES, verifyBlock } from './cid.ts'
import { type ManifestLabel, manifestLabel, ownLabel } from './manifest.ts'
import { normalizeTags } from './tags.ts'

export interface BlockMeta {
  pinned?: boolean
  /**
   * Signed manifests that name this block (read with `manifestLabel`): with the block's own tags
   * (a manifest's), the only source of its tags.
   */
  labels?: ManifestLabel[]
}

export interface StoredBlockInfo {
  cid: string
  size: number
  tags: string[]
  pinned: boolean
  createdAt: number
}

/** A block whose known tags grew when labels were recorded. */
export interface Relabelled {
  cid: string
  /** its tags now */
  tags: string[]
  held: boolean
}

export interface BlockStore {
  /**
   * Stores a block. Verifies its hash (HASH_MISMATCH), its size (BLOCK_TOO_LARGE) and that every
   * label names it (INVALID_INPUT). Its tags are its own (a manifest's) and those of every label
   * recorded for it, given now or before. Idempotent: a second put adds only signed labels' tags
   * and keeps the block pinned if either put pinned it.
   */
  put(cid: CID, bytes: Uint8Array, meta?: BlockMeta): void
  /**
   * Records labels for the blocks they name, held here or not, so a block put later without its
   * manifest still gets the tags; returns the blocks whose tags grew. A block keeps the first label
   * that names it (it says who published the block: its holders bill that publisher), and after it
   * only labels that add a tag, at most {@link MAX_BLOCK_LABELS} in all.
   */
  label(labels: readonly ManifestLabel[]): Relabelled[]
  /** The tags known for a block, held or not: its own and every recorded label's. */
  tagsOf(cid: CID): string[]
  /** The manifest bytes recorded for a block, to hand on with it so the next holder knows its tags. */
  labelsOf(cid: CID): Uint8Array[]
  /** The block's bytes, verified against the CID; a corrupted row is deleted, reported, and `undefined`. */
  get(cid: CID): Uint8Array | undefined
  /** True if a row exists; cheap (does not re-hash), so a corrupted row counts until `get` finds it. */
  has(cid: CID): boolean
  info(cid: CID): StoredBlockInfo | undefined
  delete(cid: CID): boolean
  /** Blocks in CID string order, `after` exclusive; at most `limit` (default 1000, capped at 10000). */
  list(opts?: { limit?: number; after?: string }): StoredBlockInfo[]
  /** Blocks held and their bytes; kept in memory, so as cheap as a counter. */
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

/** Most labels (signed manifests) kept for one block, and handed on with it. */
export const MAX_BLOCK_LABELS = 8
/** Most tags one block collects from its labels. */
const MAX_BLOCK_TAGS = 256
/** Most label rows kept in all; past it the oldest rows for blocks not held here go first. */
const MAX_LABEL_ROWS = 100_000

const BlockMetaSchema = z.strictObject({
  pinned: z.boolean().optional(),
  labels: z
    .array(
      z.custom<ManifestLabel>((v) => typeof v === 'object' && v !== null && 'block' in v && 'bytes' in v),
    )
    .max(MAX_BLOCK_LABELS)
    .optional(),
})

/** Labels of the manifest blocks in `db`: recomputed by the migration that brought labels in. */
function relabelManifests(db: DatabaseSync): void {
  const rows = db.prepare('SELECT cid FROM blocks').all() as Array<{ cid: string }>
  const read = db.prepare('SELECT bytes FROM blocks WHERE cid = ?')
  const setTags = db.prepare('UPDATE blocks SET tags = ? WHERE cid = ?')
  const addLabel = db.prepare(
    'INSERT OR IGNORE INTO labels (block, manifest, tags, bytes) VALUES (?, ?, ?, ?)',
  )
  for (const { cid } of rows) {
    if (!cid.startsWith('bafyrei')) continue
    const { bytes } = read.get(cid) as { bytes: Uint8Array }
    try {
      const label = manifestLabel(new Uint8Array(bytes))
      setTags.run(JSON.stringify(label.tags), cid)
      if (label.tags.length > 0)
        addLabel.run(label.block.toString(), cid, JSON.stringify(label.tags), label.bytes)
    } catch {
      // dag-cbor data that is not a signed manifest carries no tags
    }
  }
}

// Each entry migrates from version i to i + 1. Append only: a released migration never changes.
const MIGRATIONS: Migration[] = [
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
  // Tags come only from signed manifests: the free-form tags version 1 took from uploaders go,
  // and each manifest block's own tags are read from it again.
  (db) => {
    db.exec(`CREATE TABLE labels (
       block TEXT NOT NULL,
       manifest TEXT NOT NULL,
       tags TEXT NOT NULL,
       bytes BLOB NOT NULL,
       PRIMARY KEY (block, manifest)
     ) STRICT;
     UPDATE blocks SET tags = '[]';`)
    relabelManifests(db)
  },
]

/** The schema version this code writes; `PRAGMA user_version` records what a file holds. */
export const BLOCK_STORE_SCHEMA_VERSION = MIGRATIONS.length

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

/**
 * Opens (creating if needed) a block store in one SQLite file. Every block is verified against
 * its CID when written and again when read, so the store never serves bytes that are not what
 * their name says.
 */
export function openBlockStore(init: BlockStoreInit): BlockStore {
  const now = init.now ?? Date.now
  const db = openSqlite(init.path, 'block store', MIGRATIONS)

  const stmt = {
    select: db.prepare('SELECT bytes FROM blocks WHERE cid = ?'),
    meta: db.prepare('SELECT cid, size, tags, pinned, created_at FROM blocks WHERE cid = ?'),
    has: db.prepare('SELECT 1 AS x FROM blocks WHERE cid = ?'),
    insert: db.prepare(
      'INSERT INTO blocks (cid, bytes, size, tags, pinned, created_at, last_access) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    pin: db.prepare('UPDATE blocks SET pinned = 1 WHERE cid = ?'),
    updateTags: db.prepare('UPDATE blocks SET tags = ? WHERE cid = ?'),
    replaceBytes: db.prepare('UPDATE blocks SET bytes = ?, size = ? WHERE cid = ?'),
    touch: db.prepare('UPDATE blocks SET last_access = ? WHERE cid = ?'),
    delete: db.prepare('DELETE FROM blocks WHERE cid = ? RETURNING size'),
    list: db.prepare(
      'SELECT cid, size, tags, pinned, created_at FROM blocks WHERE cid > ? ORDER BY cid LIMIT ?',
    ),
    stats: db.prepare('SELECT count(*) AS blocks, coalesce(sum(size), 0) AS bytes FROM blocks'),
    labels: db.prepare('SELECT tags, bytes FROM labels WHERE block = ? ORDER BY rowid'),
    labelTags: db.prepare('SELECT tags FROM labels WHERE block = ?'),
    addLabel: db.prepare('INSERT OR IGNORE INTO labels (block, manifest, tags, bytes) VALUES (?, ?, ?, ?)'),
    labelRows: db.prepare('SELECT count(*) AS n FROM labels'),
    evictLabels: db.prepare(
      `DELETE FROM labels WHERE rowid IN (
         SELECT l.rowid FROM labels l WHERE NOT EXISTS (SELECT 1 FROM blocks b WHERE b.cid = l.block)
         ORDER BY l.rowid LIMIT ?)`,
    ),
  } satisfies Record<string, StatementSync>

  // Counted once here and kept up to date on every write: a full-table SUM per question is what
  // made a repair round over many blocks stall the event loop.
  const totals = stmt.stats.get() as { blocks: number; bytes: number }
  let blocks = Number(totals.blocks)
  let bytesHeld = Number(totals.bytes)
  let labelRows = Number((stmt.labelRows.get() as { n: number }).n)

  let closed = false
  const open = (): void => {
    if (closed) throw new CovenantError('NOT_STARTED', 'the block store is closed')
  }

  const transaction = <T>(body: () => T): T => inTransaction(db, body)

  const checkCid = (cid: CID): string => {
    if (!isSupportedCid(cid)) throw new CovenantError('INVALID_CID', `unsupported CID ${cid}`)
    return cid.toString()
  }

  const recordedTags = (key: string): string[] =>
    (stmt.labelTags.all(key) as Array<{ tags: string }>).flatMap((r) => parseTags(r.tags))

  const union = (...lists: string[][]): string[] => normalizeTags(lists.flat()).slice(0, MAX_BLOCK_TAGS)

  /** Whether `label` teaches nothing about its block: no new tag, and the block has a label already. */
  const teachesNothing = (label: ManifestLabel, known: string[], kept: number): boolean =>
    kept > 0 && label.tags.every((t) => known.includes(t))

  /**
   * Keeps `label` for its block if it is the block's first (its publisher) or adds a tag, and
   * there is room; true if it was kept.
   */
  const keepLabel = (label: ManifestLabel, known: string[]): boolean => {
    const key = label.block.toString()
    const kept = (stmt.labelTags.all(key) as unknown[]).length
    if (teachesNothing(label, known, kept) || kept >= MAX_BLOCK_LABELS) return false
    const added = stmt.addLabel.run(key, label.manifest.toString(), JSON.stringify(label.tags), label.bytes)
    labelRows += Number(added.changes)
    if (labelRows > MAX_LABEL_ROWS)
      labelRows -= Number(stmt.evictLabels.run(labelRows - MAX_LABEL_ROWS).changes)
    return true
  }

  /** Records labels inside a transaction; returns the blocks whose known tags grew. */
  const record = (labels: readonly ManifestLabel[]): Relabelled[] => {
    const grown: Relabelled[] = []
    for (const label of labels) {
      const key = label.block.toString()
      const row = stmt.meta.get(key) as Row | undefined
      const known = union(recordedTags(key), row === undefined ? [] : parseTags(row.tags))
      if (teachesNothing(label, known, (stmt.labelTags.all(key) as unknown[]).length)) continue
      // An unheld block's tags live only in its labels: one that could not be kept taught nothing.
      if (!keepLabel(label, known) && row === undefined) continue
      if (label.tags.every((t) => known.includes(t))) continue
      const tags = union(known, label.tags)
      if (row !== undefined) stmt.updateTags.run(JSON.stringify(tags), key)
      grown.push({ cid: key, tags, held: row !== undefined })
    }
    return grown
  }

  return {
    put(cid, bytes, meta = {}) {
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
      const labels = parsed.data.labels ?? []
      for (const label of labels)
        if (!label.block.equals(cid))
          throw new CovenantError(
            'INVALID_INPUT',
            `the manifest ${label.manifest} names ${label.block}, not ${key}`,
          )
      assertBlock(cid, bytes)
      // A manifest also labels the block it names, held here or not yet.
      const named = ownLabel(cid, bytes)
      const own = named[0]?.tags ?? []
      const pinned = parsed.data.pinned === true
      transaction(() => {
        const existing = stmt.meta.get(key) as Row | undefined
        if (existing === undefined) {
          let tags = union(own, recordedTags(key))
          for (const label of labels) {
            keepLabel(label, tags)
            tags = union(tags, label.tags)
          }
          const t = now()
          stmt.insert.run(key, bytes, bytes.length, JSON.stringify(tags), pinned ? 1 : 0, t, t)
          blocks++
          bytesHeld += bytes.length
        } else {
          record(labels)
          if (pinned && Number(existing.pinned) === 0) stmt.pin.run(key)
          // A put with verified bytes heals a row that was corrupted on disk.
          const row = stmt.select.get(key) as { bytes: Uint8Array } | undefined
          if (row === undefined || !verifyBlock(cid, row.bytes))
            stmt.replaceBytes.run(bytes, bytes.length, key)
        }
        record(named)
      })
    },

    label(labels) {
      open()
      return transaction(() => record(labels))
    },

    tagsOf(cid) {
      open()
      if (!isSupportedCid(cid)) return []
      const key = cid.toString()
      const row = stmt.meta.get(key) as Row | undefined
      return union(recordedTags(key), row === undefined ? [] : parseTags(row.tags))
    },

    labelsOf(cid) {
      open()
      if (!isSupportedCid(cid)) return []
      const rows = stmt.labels.all(cid.toString()) as Array<{ bytes: Uint8Array }>
      return rows.map((r) => new Uint8Array(r.bytes))
    },

    get(cid) {
      open()
      if (!isSupportedCid(cid)) return undefined
      const key = cid.toString()
      const row = stmt.select.get(key) as { bytes: Uint8Array } | undefined
      if (row === undefined) return undefined
      if (!verifyBlock(cid, row.bytes)) {
        // Never serve it; drop it so the block can be fetched again from a replica.
        dropRow(key)
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
      return dropRow(cid.toString())
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
      return { blocks, bytes: bytesHeld }
    },

    close() {
      if (closed) return
      closed = true
      db.close()
    },
  }

  /** Deletes a block's row (its labels stay: they still say what the block is); true if it was there. */
  function dropRow(key: string): boolean {
    const gone = stmt.delete.get(key) as { size: number } | undefined
    if (gone === undefined) return false
    blocks--
    bytesHeld -= Number(gone.size)
    return true
  }
}
