/**
 * The namespace state machine of one holder, in one SQLite file: namespaces, their hash-chained
 * histories, every version of every key, used nonces and known revocations.
 *
 * Every commit and every replicated entry is checked and applied inside one SQLite transaction,
 * synchronously: nothing can change the state between a check and the write it allows, and a
 * failure anywhere leaves nothing half-applied.
 */
import type { StatementSync } from 'node:sqlite'
import * as dagCbor from '@ipld/dag-cbor'
import { z } from 'zod'
import {
  authorizeWrite,
  type GrantChain,
  grantFromJSON,
  MAX_GRANTS,
  type Revocation,
  RevocationSchema,
  type VerifiedRevocation,
  verifyGrant,
  verifyRevocation,
  verifyWriteInvocation,
} from '../caps/index.ts'
import { cidForBytes } from '../content/index.ts'
import type { JsonValue } from '../encoding/index.ts'
import { CovenantError, parseOrThrow } from '../errors/index.ts'
import { transaction as inTransaction, openSqlite } from '../sqlite/index.ts'
import {
  type Commit,
  createRevocationCommit,
  decodeEntry,
  type Entry,
  effectsCid,
  encodeEntry,
  entryCid,
  KeySchema,
  MAX_ENTRY_BYTES,
  parseCommit,
  parseEffects,
  revocationId,
  type StoreEffects,
} from './entry.ts'
import {
  descriptorCid,
  namespaceId,
  type SignedDescriptor,
  SignedDescriptorSchema,
  verifyDescriptor,
  type WritePolicy,
} from './namespace.ts'
import { GRANTS_PREFIX, standingGrantsPrefix, verifyVouch, vouchKey } from './standing.ts'

/** How far ahead of this holder's clock a replicated entry's time may be. */
export const MAX_ENTRY_SKEW_MS = 60_000

/** What a holder's verifier found in a function commit's proof. */
export interface VerifiedRun {
  /** the manifest CID of the function that ran: the writer the grants must name */
  fn: string
  /** the request id, or the job id for a job's attempt: commits are idempotent per this id */
  request: string
  /** the effects on this namespace that the certified output carries */
  effects: StoreEffects
  /** the replicas k the request asked for */
  replicas: number
  /** the distinct executors whose receipts certify the output */
  certifiers: string[]
}

/**
 * Checks a function commit's certificate and output, synchronously, against this holder's own
 * view of the network, and throws (INVALID_CERTIFICATE) unless: every receipt is signed by an
 * executor the selection rule picks for the request in that view, they all sign the hash of
 * `output`, and `output` carries effects on `namespace`. `at` is the time of the entry being
 * checked (now, for a new commit): a verifier may judge an old entry, whose executors may have left
 * every view since, by its signatures alone (docs/apps.md). The datastore itself then enforces the
 * policy's numbers and vouchers, the grants and the read versions.
 */
export type VerifyRun = (
  proof: { certificate: unknown; output: unknown; job?: unknown },
  ctx: { namespace: string; policy: WritePolicy; at: number },
) => VerifiedRun

export interface DatastoreInit {
  /** a file path, or `':memory:'`; the parent directory is created if missing */
  path: string
  verifyRun: VerifyRun
  /** @default Date.now */
  now?: () => number
}

/** The latest entry of a namespace's history (seq 0 and the genesis CID before the first). */
export interface Head {
  seq: number
  cid: string
  at: number
}

export interface NamespaceInfo {
  id: string
  owner: string
  name: string
  public: boolean
  policy: WritePolicy
  /** the descriptor in force */
  descriptor: SignedDescriptor
  /** the first descriptor, which the history starts from */
  genesis: SignedDescriptor
  head: Head
}

export interface CommitResult {
  ns: string
  seq: number
  /** the entry's CID */
  cid: string
  /** the request, invocation or descriptor id */
  id: string
  /** true if this id was already applied: nothing changed, and this is the earlier result */
  duplicate: boolean
}

/**
 * A commit checked and turned into the next entry, but not applied: what a namespace's primary
 * hands the other holders before it applies the entry itself (`appendReplicated`). A commit whose
 * id was applied already prepares to the earlier result, with no bytes.
 */
export type PreparedCommit =
  | (CommitResult & { duplicate: true })
  | (CommitResult & { duplicate: false; bytes: Uint8Array })

/** A commit made the next entry of its namespace, unchecked (see `Datastore.draft`). */
export type DraftedCommit =
  | (CommitResult & { duplicate: true })
  | (CommitResult & { duplicate: false; bytes: Uint8Array; stale: boolean })

/** An entry as it travels between holders. */
export interface StoredEntry {
  seq: number
  cid: string
  bytes: Uint8Array
}

/** A key at a version: `value` is `null` if it was never written or was deleted. */
export interface KeyVersion {
  value: JsonValue | null
  /** the seq of the entry that last wrote it, 0 if none did */
  version: number
}

export interface HistoryItem {
  seq: number
  cid: string
  kind: Entry['kind']
  id: string
  at: number
  /** the keys the entry wrote */
  keys: string[]
}

export interface Datastore {
  /** Holds a namespace from its genesis descriptor (version 1). Idempotent. */
  create(genesis: unknown): NamespaceInfo
  namespace(id: string): NamespaceInfo | undefined
  /**
   * Checks and applies a commit as the next entry of its namespace; see docs/apps.md for every
   * check. The same id again is a no-op that returns the earlier result.
   */
  commit(commit: unknown): CommitResult
  /**
   * Runs every check {@link Datastore.commit} runs and builds the next entry, without applying it
   * (the state is unchanged). The same id again prepares to the earlier result.
   */
  prepare(commit: unknown): PreparedCommit
  /**
   * Builds the next entry a commit would make with none of the checks of its proof: only its
   * shape, its id, and a duplicate (the earlier result), with `stale` true if a version it read
   * is no longer current. Nothing is applied or remembered as checked. A primary offers the draft
   * to the other holders and checks it itself meanwhile, as they do (`checkReplicated`).
   */
  draft(commit: unknown): DraftedCommit
  /**
   * Reads an entry another holder sent (`decodeEntry`: canonical DAG-CBOR of the entry schema;
   * nothing about its proof or place is checked) and keeps what it read, by the entry's CID, for
   * the `checkReplicated`, `appendReplicated` or `truncate` of the same bytes that follows: a holder
   * reads an entry ahead to find the function whose manifest its check needs, and the entry is
   * then not decoded again. The entry returned is this store's: read it, never change it.
   */
  readEntry(bytes: Uint8Array): Entry
  /** Checks and applies an entry another holder built: the same checks, at the entry's time, and it must extend this holder's head. */
  appendReplicated(bytes: Uint8Array): CommitResult
  /** Runs every check {@link Datastore.appendReplicated} runs, without applying the entry. */
  checkReplicated(bytes: Uint8Array): CommitResult
  head(ns: string): Head
  /** Entries after `seq`, oldest first, at most `limit` (default 100, at most 1000). */
  entriesSince(ns: string, seq: number, limit?: number): StoredEntry[]
  /** The CIDs of the entries after `seq`, oldest first, at most `limit` (default 100, at most 1000). */
  cidsSince(ns: string, seq: number, limit?: number): Array<{ seq: number; cid: string }>
  /**
   * Removes the entries after `seq`, and the key versions, nonces and descriptor they brought, then
   * applies `replacement` (entries of another history, in order), all in one transaction: if any
   * replacement entry is refused, nothing changes. How a holder leaves a history that forked for
   * the one it adopts. Returns the new head.
   */
  truncate(ns: string, seq: number, replacement?: readonly Uint8Array[]): Head
  /** Forgets a namespace and everything held for it. True if it was held. */
  drop(ns: string): boolean
  /**
   * The other holders of a held namespace this node last counted (see {@link Datastore.keepHolders}),
   * empty if none were kept or it is not held.
   */
  holders(ns: string): string[]
  /**
   * Keeps the ids of the namespace's other holders (the node's service counts them; this store
   * only keeps them): a restarted node counts them again before its peer table hears them.
   * Nothing is kept for a namespace not held; dropping it forgets them.
   */
  keepHolders(ns: string, holders: readonly string[]): void
  /** The ids of the namespaces held, in order, after `after`, at most `limit` (default 100, at most 1000). */
  namespaces(options?: { after?: string; limit?: number }): string[]
  /** A key at the head, or at the namespace version `at`. */
  get(ns: string, key: string, options?: { at?: number }): KeyVersion
  /** The keys present (not deleted) under `prefix`, in UTF-8 byte order, after `after`. */
  list(
    ns: string,
    options?: { prefix?: string; at?: number; after?: string; limit?: number },
  ): Array<{ key: string } & KeyVersion>
  /** A key's versions, newest first, before version `before`. */
  keyHistory(ns: string, key: string, options?: { before?: number; limit?: number }): KeyVersion[]
  /** The namespace's entries after `after`, oldest first. */
  history(ns: string, options?: { after?: number; limit?: number }): HistoryItem[]
  /**
   * Checks a revocation and commits it as the next entry (`createRevocationCommit`): it holds for
   * every later entry. The same revocation again is a no-op (`added: false`).
   */
  addRevocation(ns: string, revocation: unknown): VerifiedRevocation & { added: boolean; seq: number }
  /** The revocations in the history, by CID, after the CID `after`, at most `limit` (default 100, at most 1000). */
  revocations(
    ns: string,
    options?: { after?: string; limit?: number },
  ): Array<{ cid: string; seq: number; revocation: Revocation }>
  close(): void
}

const SCHEMA = `
  CREATE TABLE namespaces (
    id TEXT PRIMARY KEY,
    genesis BLOB NOT NULL,
    descriptor BLOB NOT NULL,
    head_seq INTEGER NOT NULL,
    head_cid TEXT NOT NULL,
    head_at INTEGER NOT NULL
  ) STRICT;
  CREATE TABLE entries (
    ns TEXT NOT NULL,
    seq INTEGER NOT NULL,
    cid TEXT NOT NULL,
    id TEXT NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (ns, seq),
    UNIQUE (ns, id)
  ) STRICT;
  CREATE TABLE nonces (
    ns TEXT NOT NULL,
    writer TEXT NOT NULL,
    nonce TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (ns, writer, nonce)
  ) STRICT;
  CREATE TABLE kv (
    ns TEXT NOT NULL,
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    value BLOB,
    PRIMARY KEY (ns, key, seq)
  ) STRICT;
  CREATE TABLE revocations (
    ns TEXT NOT NULL,
    cid TEXT NOT NULL,
    revoked TEXT NOT NULL,
    effective INTEGER NOT NULL,
    bytes BLOB NOT NULL,
    PRIMARY KEY (ns, cid)
  ) STRICT;
  CREATE INDEX revocations_revoked ON revocations (ns, revoked, effective);
`

/** The other holders a namespace's node last counted: peer ids, at most a covenant's replicas. */
const HeldBySchema = z.array(z.string().min(1).max(128)).max(64)

/** What applying an entry records besides its writes: a key writer's nonce, a revocation. */
interface Recorded {
  nonce?: [string, string]
  revocation?: VerifiedRevocation
}

/**
 * The schema's steps, oldest first (`openSqlite` runs those a file lacks). From step 2, each
 * revocation records the history's seq it holds from; those stored before it hold from the
 * history's start (seq 0), as they did. From step 3, a namespace keeps the other holders its node
 * last counted (a JSON array of peer ids; none before).
 */
const MIGRATIONS = [
  SCHEMA,
  'ALTER TABLE revocations ADD COLUMN seq INTEGER NOT NULL DEFAULT 0',
  "ALTER TABLE namespaces ADD COLUMN holders TEXT NOT NULL DEFAULT '[]'",
]

/** The schema version this code writes; `PRAGMA user_version` records what a file holds. */
export const DATASTORE_SCHEMA_VERSION = MIGRATIONS.length

interface NamespaceRow {
  id: string
  genesis: Uint8Array
  descriptor: Uint8Array
  head_seq: number
  head_cid: string
  head_at: number
}

// Rows are this holder's own writes, checked before they were stored: read back without re-verifying.
function storedDescriptor(bytes: Uint8Array): SignedDescriptor {
  return SignedDescriptorSchema.parse(dagCbor.decode(bytes))
}

function decodeValue(bytes: Uint8Array | null): JsonValue | null {
  return bytes === null ? null : (dagCbor.decode(bytes) as JsonValue)
}

function fail(code: 'ENTRY_INVALID' | 'NAMESPACE_INVALID' | 'INVALID_CERTIFICATE', message: string): never {
  throw new CovenantError(code, message)
}

/**
 * The latest value of every key present under `:prefix` at version `:at`, after `:after`, with
 * `bound` as an upper bound on the keys scanned.
 */
function listKeys(bound: string): string {
  return `SELECT key, seq, value FROM kv AS k
       WHERE ns = :ns AND key >= :prefix ${bound} AND key > :after
         AND substr(key, 1, length(:prefix)) = :prefix
         AND seq = (SELECT max(seq) FROM kv WHERE ns = k.ns AND key = k.key AND seq <= :at)
         AND value IS NOT NULL
       ORDER BY key LIMIT :limit`
}

/**
 * Where the keys under `prefix` end, in SQLite's order (UTF-8 bytes, which is code point order):
 * the prefix with its last code point one higher. A listing then scans only the keys under its
 * prefix, not every key after it: a namespace's standing grants (`_grants/`) sort before every key
 * that starts with a lower-case letter, and each function commit walked every version of those.
 * Undefined for `''`, or a last code point that cannot be raised to a scalar value: every key
 * after the prefix then.
 */
function prefixEnd(prefix: string): string | undefined {
  const points = [...prefix]
  const last = points.pop()?.codePointAt(0)
  if (last === undefined || last >= 0x10ffff || (last >= 0xd7ff && last <= 0xdfff)) return undefined
  return points.join('') + String.fromCodePoint(last + 1)
}

/** The rows of the listing `params` asks for, through the bounded statement where it can be. */
type ListedRow = { key: string; seq: number; value: Uint8Array | null }

function listRows(
  stmt: { list: StatementSync; listAll: StatementSync },
  params: { ns: string; prefix: string; after: string; at: number; limit: number },
): ListedRow[] {
  const end = prefixEnd(params.prefix)
  const rows = end === undefined ? stmt.listAll.all(params) : stmt.list.all({ ...params, end })
  return rows as ListedRow[]
}

/** Standing grants whose chains one datastore keeps read (a few KiB each). */
const READ_GRANTS_MAX = 256
/** A function's standing grants are kept listed only if their values take at most this much. */
const GRANT_ROWS_KEPT_BYTES = 64 * 1024

/**
 * Entries read ahead that a datastore keeps until they are checked (see `readEntry`): a page a
 * holder pulls (100 entries), each at most this large (a few MiB in all).
 */
const READ_AHEAD_KEPT = 128
const READ_AHEAD_MAX_BYTES = 64 * 1024

const LimitSchema = z.number().int().min(1).max(1000)
const SeqSchema = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)

/**
 * Opens (creating if needed) a holder's datastore.
 *
 * @example
 * ```ts
 * const store = openDatastore({ path: '.covenant/datastore.db', verifyRun })
 * const { id, descriptor } = createNamespace(ownerKey, { name: 'site', public: true })
 * store.create(descriptor)
 * store.commit(await createKeyCommit({ issuer: ownerKey, ns: id, writes: [{ key: 'title', value: 'Hi' }] }))
 * store.get(id, 'title') // { value: 'Hi', version: 1 }
 * ```
 */
export function openDatastore(init: DatastoreInit): Datastore {
  const now = init.now ?? Date.now
  const db = openSqlite(init.path, 'datastore', MIGRATIONS)
  const stmt = {
    namespace: db.prepare('SELECT * FROM namespaces WHERE id = ?'),
    insertNamespace: db.prepare(
      'INSERT INTO namespaces (id, genesis, descriptor, head_seq, head_cid, head_at) VALUES (?, ?, ?, 0, ?, 0)',
    ),
    setHead: db.prepare('UPDATE namespaces SET head_seq = ?, head_cid = ?, head_at = ? WHERE id = ?'),
    setDescriptor: db.prepare('UPDATE namespaces SET descriptor = ? WHERE id = ?'),
    holders: db.prepare('SELECT holders FROM namespaces WHERE id = ?'),
    setHolders: db.prepare('UPDATE namespaces SET holders = ? WHERE id = ?'),
    entryAt: db.prepare('SELECT seq, cid FROM entries WHERE ns = ? AND seq = ?'),
    entryById: db.prepare('SELECT seq, cid FROM entries WHERE ns = ? AND id = ?'),
    entriesAfter: db.prepare(
      'SELECT seq, cid, bytes FROM entries WHERE ns = ? AND seq > ? ORDER BY seq LIMIT ?',
    ),
    cidsAfter: db.prepare('SELECT seq, cid FROM entries WHERE ns = ? AND seq > ? ORDER BY seq LIMIT ?'),
    entryBytesAt: db.prepare('SELECT bytes FROM entries WHERE ns = ? AND seq = ?'),
    entriesDownFrom: db.prepare('SELECT bytes FROM entries WHERE ns = ? AND seq <= ? ORDER BY seq DESC'),
    entriesAbove: db.prepare('SELECT bytes FROM entries WHERE ns = ? AND seq > ?'),
    deleteEntriesAbove: db.prepare('DELETE FROM entries WHERE ns = ? AND seq > ?'),
    deleteValuesAbove: db.prepare('DELETE FROM kv WHERE ns = ? AND seq > ?'),
    deleteNoncesAbove: db.prepare('DELETE FROM nonces WHERE ns = ? AND seq > ?'),
    namespacesAfter: db.prepare('SELECT id FROM namespaces WHERE id > ? ORDER BY id LIMIT ?'),
    insertEntry: db.prepare('INSERT INTO entries (ns, seq, cid, id, bytes) VALUES (?, ?, ?, ?, ?)'),
    nonce: db.prepare('SELECT seq FROM nonces WHERE ns = ? AND writer = ? AND nonce = ?'),
    insertNonce: db.prepare('INSERT INTO nonces (ns, writer, nonce, seq) VALUES (?, ?, ?, ?)'),
    insertValue: db.prepare('INSERT INTO kv (ns, key, seq, value) VALUES (?, ?, ?, ?)'),
    valueAt: db.prepare(
      'SELECT seq, value FROM kv WHERE ns = ? AND key = ? AND seq <= ? ORDER BY seq DESC LIMIT 1',
    ),
    versions: db.prepare(
      'SELECT seq, value FROM kv WHERE ns = ? AND key = ? AND seq < ? ORDER BY seq DESC LIMIT ?',
    ),
    list: db.prepare(listKeys('AND key < :end')),
    listAll: db.prepare(listKeys('')),
    revoked: db.prepare(
      'SELECT 1 AS x FROM revocations WHERE ns = ? AND revoked = ? AND effective <= ? AND seq < ? LIMIT 1',
    ),
    insertRevocation: db.prepare(
      'INSERT INTO revocations (ns, cid, revoked, effective, bytes, seq) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    revocations: db.prepare(
      'SELECT cid, seq, bytes FROM revocations WHERE ns = ? AND cid > ? ORDER BY cid LIMIT ?',
    ),
    deleteRevocationsAbove: db.prepare('DELETE FROM revocations WHERE ns = ? AND seq > ?'),
  } satisfies Record<string, StatementSync>

  let closed = false
  /** Standing grants' chains by their stored bytes (see `keptGrant`). */
  const readGrants = new Map<string, GrantChain>()
  /**
   * The rows of a function's standing grants in a namespace (by `ns` and `fn`), as listed at
   * version `at` (see `standingGrants`). They stand for every later version until a write under
   * `_grants/` is applied, the history is truncated, the namespace dropped or a transaction rolled
   * back: each of those forgets them all.
   */
  const grantRows = new Map<string, { at: number; rows: ListedRow[] }>()

  /** Runs `body` in one immediate transaction; any failure rolls all of it back. */
  const transaction = <T>(body: () => T): T => {
    if (closed) throw new CovenantError('NOT_STARTED', 'the datastore is closed')
    try {
      return inTransaction(db, body)
    } catch (err) {
      grantRows.clear()
      throw CovenantError.from(err, 'INTERNAL')
    }
  }

  const row = (ns: unknown): NamespaceRow => {
    if (closed) throw new CovenantError('NOT_STARTED', 'the datastore is closed')
    const found = typeof ns === 'string' ? (stmt.namespace.get(ns) as NamespaceRow | undefined) : undefined
    if (found === undefined)
      throw new CovenantError(
        'NAMESPACE_NOT_FOUND',
        `this holder does not hold namespace ${String(ns).slice(0, 80)}`,
      )
    return found
  }

  // Parsed descriptors by their bytes: every operation reads its namespace's row.
  const descriptors = new Map<string, SignedDescriptor>()
  const parsedDescriptor = (bytes: Uint8Array): SignedDescriptor => {
    const key = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
    let hit = descriptors.get(key)
    if (hit === undefined) {
      if (descriptors.size >= 256) descriptors.delete(descriptors.keys().next().value as string)
      hit = storedDescriptor(bytes)
      descriptors.set(key, hit)
    }
    return hit
  }

  const info = (r: NamespaceRow): NamespaceInfo => {
    const descriptor = parsedDescriptor(r.descriptor)
    return {
      id: r.id,
      owner: descriptor.owner,
      name: descriptor.name,
      public: descriptor.public,
      policy: descriptor.policy,
      descriptor,
      genesis: parsedDescriptor(r.genesis),
      head: { seq: Number(r.head_seq), cid: r.head_cid, at: Number(r.head_at) },
    }
  }

  const currentVersion = (ns: string, key: string): number =>
    Number((stmt.valueAt.get(ns, key, Number.MAX_SAFE_INTEGER) as { seq: number } | undefined)?.seq ?? 0)

  /** A key's value as entry `seq` finds it: what the entries before it wrote. */
  const valueBefore = (ns: string, key: string, seq: number): JsonValue | null => {
    const found = stmt.valueAt.get(ns, key, seq - 1) as { value: Uint8Array | null } | undefined
    return found === undefined ? null : decodeValue(found.value)
  }

  /**
   * The certifiers that count under the policy: all of them with `'any'`; with `vouchedBy`, those
   * for which the namespace held, before entry `seq`, a vouch of one of the named keys, valid at `at`.
   */
  const countedCertifiers = (
    ns: string,
    policy: WritePolicy,
    certifiers: readonly string[],
    seq: number,
    at: number,
  ): number => {
    const distinct = [...new Set(certifiers)]
    const { certifiers: who } = policy
    if (who === 'any') return distinct.length
    const vouched = (executor: string) =>
      who.vouchedBy.some((voucher) => {
        const kept = valueBefore(ns, vouchKey(executor, voucher), seq)
        if (kept === null) return false
        try {
          const vouch = verifyVouch(kept)
          return vouch.voucher === voucher && vouch.executor === executor && at < vouch.expiresAt
        } catch {
          return false // a malformed or forged vouch counts for nothing
        }
      })
    return distinct.filter(vouched).length
  }

  /**
   * A standing grant's chain, as read from its stored value (GRANT_MALFORMED, from grantFromJSON,
   * for one that is not a grant). Every function commit reads the same few values, and reading one
   * decodes and re-encodes each token: the chains read are kept, by their exact bytes (reading is a
   * pure function of them). Whether a chain holds is still checked at every commit (verifyGrant).
   */
  const keptGrant = (value: Uint8Array | null): GrantChain => {
    const bytesKey = value === null ? undefined : Buffer.from(value).toString('latin1')
    const known = bytesKey === undefined ? undefined : readGrants.get(bytesKey)
    if (known !== undefined) return known
    const { chain } = grantFromJSON(decodeValue(value))
    if (bytesKey !== undefined) {
      if (readGrants.size >= READ_GRANTS_MAX) readGrants.delete(readGrants.keys().next().value as string)
      readGrants.set(bytesKey, chain)
    }
    return chain
  }

  /**
   * The standing grants the namespace held for the function `fn` before entry `seq` that hold at
   * `at` (docs/apps.md): an expired or revoked one left in place does not spoil a newer one. If
   * none holds, the first one's refusal; none kept is GRANT_MISSING (from authorizeWrite).
   */
  const standingGrants = (
    ns: NamespaceInfo,
    fn: string,
    seq: number,
    at: number,
    isRevoked: (cid: string, t: number) => boolean,
  ): GrantChain[] => {
    const rowsKey = `${ns.id} ${fn}`
    let listed = grantRows.get(rowsKey)
    if (listed === undefined || listed.at > seq - 1) {
      const rows = listRows(stmt, {
        ns: ns.id,
        prefix: standingGrantsPrefix(fn),
        after: '',
        at: seq - 1,
        limit: 64,
      })
      listed = { at: seq - 1, rows }
      if (rows.reduce((n, r) => n + (r.value?.byteLength ?? 0), 0) <= GRANT_ROWS_KEPT_BYTES) {
        if (grantRows.size >= READ_GRANTS_MAX) grantRows.delete(grantRows.keys().next().value as string)
        grantRows.set(rowsKey, listed)
      }
    }
    const kept = listed.rows
    const holding: GrantChain[] = []
    let first: unknown
    for (const row of kept) {
      try {
        const chain = keptGrant(row.value)
        verifyGrant(chain, { namespace: ns.id, owner: ns.owner, writer: { fn }, now: at, isRevoked })
        holding.push(chain)
      } catch (err) {
        first ??= err
      }
    }
    if (holding.length === 0 && first !== undefined) throw first
    return holding.slice(0, MAX_GRANTS)
  }

  /**
   * Every check a commit must pass as entry `seq` at time `at` that is not about its place in the
   * history: its proof, the write policy, the grants for every key written (against the
   * revocations recorded before `seq`), a key's nonce, and the read versions. Returns what
   * applying it records besides its writes.
   */
  const check = (ns: NamespaceInfo, commit: Commit, at: number, seq: number): Recorded => {
    const keys = commit.writes.map((w) => w.key)
    const isRevoked = (cid: string, t: number) => stmt.revoked.get(ns.id, cid, t, seq) !== undefined
    const grants = { namespace: ns.id, owner: ns.owner, keys, now: at, isRevoked }
    const effects = effectsCid(commit)
    let nonce: [string, string] | undefined
    if (commit.kind === 'revocation') {
      const revocation = verifyRevocation(commit.proof.revocation, { namespace: ns.id, owner: ns.owner })
      return { revocation }
    }
    if (commit.kind === 'policy') {
      const d = verifyDescriptor(commit.proof.descriptor)
      if (d.owner !== ns.owner || d.name !== ns.name)
        fail('NAMESPACE_INVALID', 'the descriptor is for another namespace')
      if (d.version <= ns.descriptor.version)
        fail(
          'NAMESPACE_INVALID',
          `descriptor version ${d.version} is not newer than ${ns.descriptor.version}`,
        )
    } else if (commit.kind === 'key') {
      const inv = verifyWriteInvocation(commit.proof.invocation, { namespace: ns.id, now: at })
      if (inv.effects !== effects)
        throw new CovenantError('GRANT_FORGED', 'the invocation does not sign these writes and reads')
      const offered = commit.proof.grants.map((chain) => cidForBytes(chain[0], 'dag-cbor').toString())
      if (offered.length !== inv.proofs.length || offered.some((cid) => !inv.proofs.includes(cid)))
        throw new CovenantError(
          'GRANT_BROKEN_CHAIN',
          'the grants offered are not the ones the invocation links',
        )
      authorizeWrite({ ...grants, writer: { key: inv.writer }, grants: commit.proof.grants })
      const used = stmt.nonce.get(ns.id, inv.writer, inv.nonce) as { seq: number } | undefined
      if (used !== undefined)
        throw new CovenantError(
          'INVOCATION_REPLAYED',
          `nonce ${inv.nonce} was already used at seq ${used.seq}`,
          {
            details: { seq: Number(used.seq) },
          },
        )
      nonce = [inv.writer, inv.nonce]
    } else {
      let run: VerifiedRun
      try {
        run = init.verifyRun(
          { certificate: commit.proof.certificate, output: commit.proof.output, job: commit.proof.job },
          { namespace: ns.id, policy: ns.policy, at },
        )
      } catch (err) {
        throw CovenantError.from(err, 'INVALID_CERTIFICATE')
      }
      if (run.request !== commit.id)
        fail('INVALID_CERTIFICATE', `the certificate is for request ${run.request}`)
      if (effectsCid(parseEffects(run.effects)) !== effects)
        fail('INVALID_CERTIFICATE', 'the writes and reads are not the ones the certified output carries')
      const { minReplicas, minQuorum } = ns.policy
      if (run.replicas < minReplicas)
        throw new CovenantError(
          'WRITE_POLICY_UNMET',
          `the run asked ${run.replicas} executors, the policy ${minReplicas}`,
        )
      const counted = countedCertifiers(ns.id, ns.policy, run.certifiers, seq, at)
      if (counted < minQuorum)
        throw new CovenantError(
          'WRITE_POLICY_UNMET',
          `${counted} certifier(s) count under the policy, ${minQuorum} needed`,
        )
      const offered =
        commit.proof.grants.length > 0 ? commit.proof.grants : standingGrants(ns, run.fn, seq, at, isRevoked)
      authorizeWrite({ ...grants, writer: { fn: run.fn }, grants: offered })
    }
    for (const read of commit.reads) {
      const current = currentVersion(ns.id, read.key)
      if (current !== read.version)
        throw new CovenantError(
          'WRITE_CONFLICT',
          `${JSON.stringify(read.key)} was read at version ${read.version} but is now at ${current}`,
          { details: { key: read.key, read: read.version, current } },
        )
    }
    return { nonce }
  }

  const checkSize = (bytes: Uint8Array): void => {
    if (bytes.length > MAX_ENTRY_BYTES)
      throw new CovenantError(
        'STORE_LIMIT',
        `the entry is ${bytes.length} bytes, more than ${MAX_ENTRY_BYTES}`,
      )
  }

  /** Applies `entry`, whose canonical bytes are `bytes` and their CID `cid` (computed once by the caller). */
  const apply = (
    ns: NamespaceInfo,
    entry: Entry,
    bytes: Uint8Array,
    recorded: Recorded,
    cid = entryCid(bytes),
  ): CommitResult => {
    const { nonce, revocation } = recorded
    checkSize(bytes)
    stmt.insertEntry.run(ns.id, entry.seq, cid, entry.id, bytes)
    for (const w of entry.writes) {
      stmt.insertValue.run(ns.id, w.key, entry.seq, w.value === null ? null : dagCbor.encode(w.value))
      if (w.key.startsWith(GRANTS_PREFIX)) grantRows.clear()
    }
    if (nonce !== undefined) stmt.insertNonce.run(ns.id, nonce[0], nonce[1], entry.seq)
    if (entry.kind === 'policy') stmt.setDescriptor.run(dagCbor.encode(entry.proof.descriptor), ns.id)
    if (entry.kind === 'revocation' && revocation !== undefined)
      stmt.insertRevocation.run(
        ns.id,
        revocation.cid,
        revocation.revoked,
        revocation.effectiveAt,
        dagCbor.encode(entry.proof.revocation),
        entry.seq,
      )
    stmt.setHead.run(entry.seq, cid, entry.at, ns.id)
    return { ns: ns.id, seq: entry.seq, cid, id: entry.id, duplicate: false }
  }

  /** The id a commit must carry, where it can be computed without the verifier. */
  const expectedId = (commit: Commit): string | undefined => {
    if (commit.kind === 'key') return cidForBytes(commit.proof.invocation, 'dag-cbor').toString()
    if (commit.kind === 'policy') return descriptorCid(commit.proof.descriptor)
    if (commit.kind === 'revocation') return revocationId(commit.proof.revocation)
    return undefined
  }

  const duplicateOf = (ns: string, id: string): (CommitResult & { duplicate: true }) | undefined => {
    const earlier = stmt.entryById.get(ns, id) as { seq: number; cid: string } | undefined
    return earlier === undefined
      ? undefined
      : { ns, seq: Number(earlier.seq), cid: earlier.cid, id, duplicate: true }
  }

  /** Where a commit would go: its namespace, seq and time; or the earlier result of its id. */
  const placeOf = (
    value: unknown,
  ):
    | (CommitResult & { duplicate: true })
    | { commit: Commit; ns: NamespaceInfo; seq: number; at: number } => {
    const commit = parseCommit(value)
    const ns = info(row(commit.ns))
    const expected = expectedId(commit)
    if (expected !== undefined && expected !== commit.id)
      fail('ENTRY_INVALID', `the commit's id is not ${expected}, the CID of its proof`)
    const earlier = duplicateOf(ns.id, commit.id)
    if (earlier !== undefined) return earlier
    // a clock that went back never makes history go back
    return { commit, ns, seq: ns.head.seq + 1, at: Math.max(now(), ns.head.at) }
  }

  const entryAt = (place: { commit: Commit; ns: NamespaceInfo; seq: number; at: number }) => {
    const entry: Entry = { ...place.commit, seq: place.seq, prev: place.ns.head.cid, at: place.at }
    const bytes = encodeEntry(entry)
    checkSize(bytes)
    return { entry, bytes }
  }

  /** A commit checked and made the next entry of its namespace, or the earlier result of its id. */
  const nextEntry = (
    value: unknown,
  ):
    | (CommitResult & { duplicate: true })
    | { ns: NamespaceInfo; entry: Entry; bytes: Uint8Array; recorded: Recorded } => {
    const place = placeOf(value)
    if ('duplicate' in place) return place
    const recorded = check(place.ns, place.commit, place.at, place.seq)
    return { ns: place.ns, ...entryAt(place), recorded }
  }

  /** The last entry drafted (see `draft`), by its CID: read again from here, not decoded. */
  let drafted: { cid: string; entry: Entry } | undefined
  /** Entries read ahead (see `readEntry`) by their CID, until they are checked or applied. */
  const readAhead = new Map<string, Entry>()

  /** Removes a namespace's entries after `seq` and all they brought; inside a transaction. */
  const truncateTo = (r: NamespaceRow, seq: number): void => {
    // The descriptor in force changes only if a removed entry brought a newer one: then it is the
    // last policy entry kept, or the genesis.
    const removed = stmt.entriesAbove.all(r.id, seq) as Array<{ bytes: Uint8Array }>
    if (removed.some((e) => (dagCbor.decode(e.bytes) as Entry).kind === 'policy')) {
      let descriptor: Uint8Array = r.genesis
      for (const e of stmt.entriesDownFrom.iterate(r.id, seq) as Iterable<{ bytes: Uint8Array }>) {
        const entry = dagCbor.decode(e.bytes) as Entry
        if (entry.kind === 'policy') {
          descriptor = dagCbor.encode(entry.proof.descriptor)
          break
        }
      }
      stmt.setDescriptor.run(descriptor, r.id)
    }
    stmt.deleteEntriesAbove.run(r.id, seq)
    stmt.deleteValuesAbove.run(r.id, seq)
    grantRows.clear()
    stmt.deleteNoncesAbove.run(r.id, seq)
    stmt.deleteRevocationsAbove.run(r.id, seq)
    const kept = stmt.entryBytesAt.get(r.id, seq) as { bytes: Uint8Array } | undefined
    const head: Head =
      kept === undefined
        ? { seq: 0, cid: descriptorCid(storedDescriptor(r.genesis)), at: 0 }
        : { seq, cid: entryCid(kept.bytes), at: (dagCbor.decode(kept.bytes) as Entry).at }
    stmt.setHead.run(head.seq, head.cid, head.at, r.id)
  }

  /** The last entry that passed every check, and the head it was checked on. */
  let passed: { ns: string; head: string; cid: string; entry: Entry; recorded: Recorded } | undefined

  /** An entry another holder built, checked as the next one here, or the result it already had. */
  const replicated = (
    bytes: Uint8Array,
  ):
    | (CommitResult & { duplicate: true })
    | { ns: NamespaceInfo; entry: Entry; recorded: Recorded; cid: string } => {
    // the entry a holder checked is offered again to be applied: the same bytes (by their CID), read once
    const cid = bytes instanceof Uint8Array ? entryCid(bytes) : ''
    const ahead = readAhead.get(cid)
    readAhead.delete(cid)
    const entry =
      cid === ''
        ? decodeEntry(bytes)
        : passed?.cid === cid
          ? passed.entry
          : drafted?.cid === cid
            ? drafted.entry
            : (ahead ?? decodeEntry(bytes))
    const ns = info(row(entry.ns))
    const present = stmt.entryAt.get(ns.id, entry.seq) as { seq: number; cid: string } | undefined
    if (present !== undefined) {
      if (present.cid === cid) return { ns: ns.id, seq: entry.seq, cid, id: entry.id, duplicate: true }
      throw new CovenantError('ENTRY_FORK', `seq ${entry.seq} here is ${present.cid}, not ${cid}`)
    }
    if (entry.seq > ns.head.seq + 1)
      throw new CovenantError('ENTRY_GAP', `entry ${entry.seq} is ahead of the head ${ns.head.seq}`, {
        details: { head: ns.head.seq },
      })
    if (entry.prev !== ns.head.cid)
      throw new CovenantError(
        'ENTRY_FORK',
        `entry ${entry.seq} follows ${entry.prev}, not the head ${ns.head.cid}`,
      )
    if (entry.at < ns.head.at) fail('ENTRY_INVALID', 'the entry is older than the entry before it')
    if (entry.at > now() + MAX_ENTRY_SKEW_MS) fail('ENTRY_INVALID', 'the entry is from the future')
    const expected = expectedId(entry)
    if (expected !== undefined && expected !== entry.id)
      fail('ENTRY_INVALID', `the entry's id is not ${expected}, the CID of its proof`)
    const earlier = duplicateOf(ns.id, entry.id)
    if (earlier !== undefined)
      fail('ENTRY_INVALID', `the entry applies ${entry.id} again (seq ${earlier.seq})`)
    // Checked already on this very head (a primary's `prepare`, a holder's `checkReplicated`):
    // everything the checks read is the history up to the head, so the verdict stands.
    if (passed?.ns === ns.id && passed.head === ns.head.cid && passed.cid === cid)
      return { ns, entry, recorded: passed.recorded, cid }
    const recorded = check(ns, entry, entry.at, entry.seq)
    passed = { ns: ns.id, head: ns.head.cid, cid, entry, recorded }
    return { ns, entry, recorded, cid }
  }

  const seqOption = (ns: NamespaceInfo, at: number | undefined): number => {
    if (at === undefined) return ns.head.seq
    if (!SeqSchema.safeParse(at).success || at > ns.head.seq)
      throw new CovenantError('INVALID_INPUT', `version ${at} is not between 0 and the head ${ns.head.seq}`)
    return at
  }

  const keyOption = (key: unknown): string => {
    const parsed = KeySchema.safeParse(key)
    if (!parsed.success)
      throw new CovenantError('INVALID_INPUT', `invalid key: ${z.prettifyError(parsed.error)}`)
    return parsed.data
  }

  const limitOption = (limit: number | undefined, fallback: number): number => {
    if (limit === undefined) return fallback
    if (!LimitSchema.safeParse(limit).success) throw new CovenantError('INVALID_INPUT', 'limit is 1 to 1000')
    return limit
  }

  return {
    create(genesis) {
      return transaction(() => {
        const d = verifyDescriptor(genesis)
        if (d.version !== 1) fail('NAMESPACE_INVALID', 'a namespace starts from its version 1 descriptor')
        const id = namespaceId(d.owner, d.name)
        const existing = stmt.namespace.get(id) as NamespaceRow | undefined
        const genesisCid = descriptorCid(d)
        if (existing !== undefined) {
          if (descriptorCid(storedDescriptor(existing.genesis)) !== genesisCid)
            fail('NAMESPACE_INVALID', `namespace ${id} is held from another genesis descriptor`)
          return info(existing)
        }
        const bytes = dagCbor.encode(d)
        stmt.insertNamespace.run(id, bytes, bytes, genesisCid)
        return info(row(id))
      })
    },

    namespace(id) {
      if (closed) throw new CovenantError('NOT_STARTED', 'the datastore is closed')
      const r = typeof id === 'string' ? (stmt.namespace.get(id) as NamespaceRow | undefined) : undefined
      return r === undefined ? undefined : info(r)
    },

    commit(value) {
      return transaction(() => {
        const next = nextEntry(value)
        if ('duplicate' in next) return next
        return apply(next.ns, next.entry, next.bytes, next.recorded)
      })
    },

    prepare(value) {
      return transaction(() => {
        const next = nextEntry(value)
        if ('duplicate' in next) return next
        const { ns, entry, bytes, recorded } = next
        const cid = entryCid(bytes)
        passed = { ns: ns.id, head: ns.head.cid, cid, entry, recorded }
        return { ns: ns.id, seq: entry.seq, cid, id: entry.id, duplicate: false, bytes }
      })
    },

    draft(value) {
      if (closed) throw new CovenantError('NOT_STARTED', 'the datastore is closed')
      const place = placeOf(value)
      if ('duplicate' in place) return place
      const { entry, bytes } = entryAt(place)
      const cid = entryCid(bytes)
      drafted = { cid, entry }
      const stale = place.commit.reads.some((r) => currentVersion(place.ns.id, r.key) !== r.version)
      return { ns: place.ns.id, seq: entry.seq, cid, id: entry.id, duplicate: false, bytes, stale }
    },

    readEntry(bytes) {
      const entry = decodeEntry(bytes)
      if ((bytes as Uint8Array).byteLength <= READ_AHEAD_MAX_BYTES) {
        if (readAhead.size >= READ_AHEAD_KEPT) readAhead.delete(readAhead.keys().next().value as string)
        readAhead.set(entryCid(bytes as Uint8Array), entry)
      }
      return entry
    },

    appendReplicated(bytes) {
      return transaction(() => {
        const next = replicated(bytes)
        return 'duplicate' in next ? next : apply(next.ns, next.entry, bytes, next.recorded, next.cid)
      })
    },

    checkReplicated(bytes) {
      return transaction(() => {
        const next = replicated(bytes)
        if ('duplicate' in next) return next
        return {
          ns: next.ns.id,
          seq: next.entry.seq,
          cid: next.cid,
          id: next.entry.id,
          duplicate: false,
        }
      })
    },

    head(ns) {
      return info(row(ns)).head
    },

    cidsSince(ns, seq, limit) {
      const r = row(ns)
      if (!SeqSchema.safeParse(seq).success)
        throw new CovenantError('INVALID_INPUT', 'seq is a whole number ≥ 0')
      const rows = stmt.cidsAfter.all(r.id, seq, limitOption(limit, 100)) as Array<{
        seq: number
        cid: string
      }>
      return rows.map((e) => ({ seq: Number(e.seq), cid: e.cid }))
    },

    truncate(ns, seq, replacement = []) {
      return transaction(() => {
        const r = row(ns)
        if (!SeqSchema.safeParse(seq).success)
          throw new CovenantError('INVALID_INPUT', 'seq is a whole number ≥ 0')
        if (seq < Number(r.head_seq)) truncateTo(r, seq)
        for (const bytes of replacement) {
          const next = replicated(bytes)
          if (!('duplicate' in next)) apply(next.ns, next.entry, bytes, next.recorded, next.cid)
        }
        return info(row(ns)).head
      })
    },

    drop(ns) {
      return transaction(() => {
        if (typeof ns !== 'string' || stmt.namespace.get(ns) === undefined) return false
        grantRows.clear()
        for (const table of ['entries', 'kv', 'nonces', 'revocations'])
          db.prepare(`DELETE FROM ${table} WHERE ns = ?`).run(ns)
        db.prepare('DELETE FROM namespaces WHERE id = ?').run(ns)
        return true
      })
    },

    holders(ns) {
      const row = stmt.holders.get(ns) as { holders: string } | undefined
      if (row === undefined) return []
      const parsed = HeldBySchema.safeParse(JSON.parse(row.holders))
      return parsed.success ? parsed.data : []
    },

    keepHolders(ns, holders) {
      stmt.setHolders.run(JSON.stringify(parseOrThrow(HeldBySchema, holders, 'INVALID_INPUT', 'holders')), ns)
    },

    namespaces(options = {}) {
      if (closed) throw new CovenantError('NOT_STARTED', 'the datastore is closed')
      const rows = stmt.namespacesAfter.all(options.after ?? '', limitOption(options.limit, 100)) as Array<{
        id: string
      }>
      return rows.map((r) => r.id)
    },

    entriesSince(ns, seq, limit) {
      const r = row(ns)
      if (!SeqSchema.safeParse(seq).success)
        throw new CovenantError('INVALID_INPUT', 'seq is a whole number ≥ 0')
      const rows = stmt.entriesAfter.all(r.id, seq, limitOption(limit, 100)) as unknown as StoredEntry[]
      return rows.map((e) => ({ seq: Number(e.seq), cid: e.cid, bytes: new Uint8Array(e.bytes) }))
    },

    get(ns, key, options = {}) {
      const n = info(row(ns))
      const found = stmt.valueAt.get(n.id, keyOption(key), seqOption(n, options.at)) as
        | { seq: number; value: Uint8Array | null }
        | undefined
      return found === undefined
        ? { value: null, version: 0 }
        : { value: decodeValue(found.value), version: Number(found.seq) }
    },

    list(ns, options = {}) {
      const n = info(row(ns))
      const prefix = options.prefix === undefined || options.prefix === '' ? '' : keyOption(options.prefix)
      const after = options.after === undefined ? '' : keyOption(options.after)
      const rows = listRows(stmt, {
        ns: n.id,
        prefix,
        after,
        at: seqOption(n, options.at),
        limit: limitOption(options.limit, 100),
      })
      return rows.map((r) => ({ key: r.key, value: decodeValue(r.value), version: Number(r.seq) }))
    },

    keyHistory(ns, key, options = {}) {
      const n = info(row(ns))
      const before = options.before === undefined ? Number.MAX_SAFE_INTEGER : options.before
      if (!SeqSchema.safeParse(before).success)
        throw new CovenantError('INVALID_INPUT', 'before is a version')
      const rows = stmt.versions.all(n.id, keyOption(key), before, limitOption(options.limit, 100)) as Array<{
        seq: number
        value: Uint8Array | null
      }>
      return rows.map((r) => ({ value: decodeValue(r.value), version: Number(r.seq) }))
    },

    history(ns, options = {}) {
      const r = row(ns)
      const after = options.after ?? 0
      if (!SeqSchema.safeParse(after).success) throw new CovenantError('INVALID_INPUT', 'after is a seq')
      const rows = stmt.entriesAfter.all(
        r.id,
        after,
        limitOption(options.limit, 100),
      ) as unknown as StoredEntry[]
      return rows.map((e) => {
        // checked when it was applied; reading it back only decodes
        const entry = dagCbor.decode(e.bytes) as Entry
        return {
          seq: entry.seq,
          cid: e.cid,
          kind: entry.kind,
          id: entry.id,
          at: entry.at,
          keys: entry.writes.map((w) => w.key),
        }
      })
    },

    addRevocation(ns, revocation) {
      return transaction(() => {
        const next = nextEntry(createRevocationCommit(ns, revocation))
        const v = verifyRevocation(revocation, { namespace: ns, owner: info(row(ns)).owner })
        if ('duplicate' in next) return { ...v, added: false, seq: next.seq }
        const applied = apply(next.ns, next.entry, next.bytes, next.recorded)
        return { ...v, added: true, seq: applied.seq }
      })
    },

    revocations(ns, options = {}) {
      const r = row(ns)
      const rows = stmt.revocations.all(r.id, options.after ?? '', limitOption(options.limit, 100)) as Array<{
        cid: string
        seq: number
        bytes: Uint8Array
      }>
      return rows.map((x) => ({
        cid: x.cid,
        seq: Number(x.seq),
        revocation: RevocationSchema.parse(dagCbor.decode(x.bytes)),
      }))
    },

    close() {
      if (closed) return
      closed = true
      db.close()
    },
  }
}
