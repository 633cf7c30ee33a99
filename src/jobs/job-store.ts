/**
 * One keeper's jobs, in SQLite (`<data>/jobs.db`): each job's doc (record and proof), checked
 * before it is stored, and the state this keeper holds, replaced only by a state that wins
 * (state.ts), so storing a state twice, or an older one, changes nothing but the charges it
 * carries (`paid`, merged from every state).
 *
 * Besides the replicated state, each row carries two local notes: when this keeper should look at
 * the job next (`look_at`), and what it charged the enqueuer for the attempts it dispatched itself
 * (`charged_here`: its own word, which no state from another keeper changes). The dispatcher looks
 * when an attempt is due; a keeper that is not the dispatcher puts its look off, and looks again
 * when its view of the network changes, so a scan touches only the jobs it may have to act on.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { canonicalBytes } from '../keys/index.ts'
import { openSqlite, transaction } from '../sqlite/index.ts'
import { type JobDoc, JobDocSchema } from './effects.ts'
import type { JobRecord } from './record.ts'
import {
  encodeState,
  isSettled,
  JOB_STATUSES,
  type JobState,
  JobStateSchema,
  type JobStatus,
  mergeStates,
  paidTotal,
  sameState,
} from './state.ts'

const SCHEMA = `
CREATE TABLE jobs (
  id TEXT PRIMARY KEY,
  doc BLOB NOT NULL,
  state BLOB NOT NULL,
  status TEXT NOT NULL,
  settled INTEGER NOT NULL,
  version INTEGER NOT NULL,
  run_at INTEGER NOT NULL,
  look_at INTEGER,
  dispatcher TEXT,
  enqueuer TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX jobs_look ON jobs (look_at) WHERE settled = 0;
CREATE INDEX jobs_dispatcher ON jobs (dispatcher) WHERE settled = 0;
CREATE INDEX jobs_enqueuer ON jobs (enqueuer, id);
CREATE INDEX jobs_status ON jobs (status, id);
CREATE INDEX jobs_ended ON jobs (updated_at) WHERE settled = 1;
`

/** The schema's steps, oldest first (`openSqlite` runs those a file lacks). */
const MIGRATIONS = [
  SCHEMA,
  // what the state's `paid` adds up to, which grows without a new version: sync compares it too;
  // and what this keeper charged the enqueuer for the attempts it dispatched, by its own word
  `ALTER TABLE jobs ADD COLUMN paid INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE jobs ADD COLUMN charged_here INTEGER NOT NULL DEFAULT 0;`,
]

/** The schema version this code writes; `PRAGMA user_version` records what a file holds. */
export const JOB_STORE_SCHEMA_VERSION = MIGRATIONS.length

export interface StoredJob {
  id: string
  doc: JobDoc
  record: JobRecord
  state: JobState
}

export interface JobStoreInit {
  /** a file path, or `':memory:'`; the parent directory is created */
  path: string
}

export interface JobStore {
  has(id: string): boolean
  get(id: string): StoredJob | undefined
  /**
   * Holds a job (its doc checked by the caller) in `state`; a job held already keeps whichever
   * state wins. Returns the state held now, whether the job is new, and whether its state changed.
   */
  put(id: string, doc: JobDoc, state: JobState): { state: JobState; added: boolean; changed: boolean }
  /**
   * Keeps `state` if it wins over the one held, and what either says each keeper charged
   * (`mergeStates`); undefined for a job not held.
   */
  merge(id: string, state: JobState): { state: JobState; changed: boolean } | undefined
  /**
   * Runs `body` (synchronous) in one transaction, so the states it keeps commit together: a
   * message offering several states costs one commit, not one each (a commit, not the UPDATE, is
   * most of what keeping a state costs). If `body` throws, nothing it wrote stays.
   */
  batch<T>(body: () => T): T
  /** What this keeper charged the enqueuer for the job's attempts it dispatched (its own note); 0 if none. */
  chargedHere(id: string): number
  /** Notes what this keeper charged for the job in all; the note only grows. */
  noteCharged(id: string, total: number): void
  /** Unsettled jobs whose look time has come, soonest first. */
  due(now: number, limit: number): string[]
  /** When this keeper looks at the job next (a local note); `null` never, until {@link lookAgain}. */
  lookAt(id: string, at: number | null): void
  /** Every unsettled job is looked at again when its state's `runAt` comes: the view changed. */
  lookAgain(): void
  /** The soonest look time of any unsettled job. */
  nextLook(): number | undefined
  /** Unsettled jobs whose current attempt `peer` dispatched. */
  dispatchedBy(peer: string, limit: number): string[]
  /**
   * Every job's id, version, what its `paid` adds up to ({@link paidTotal}: it grows without a new
   * version) and whether it settled, in id order after `after`, a page at a time.
   */
  versions(opts: {
    after?: string
    limit: number
  }): Array<{ id: string; version: number; paid: number; settled: boolean }>
  /** Jobs by status and enqueuer, in id order after `after`. */
  list(opts: { status?: JobStatus; enqueuer?: string; after?: string; limit: number }): StoredJob[]
  /** How many jobs this keeper holds in each status. */
  counts(): Record<JobStatus, number>
  drop(id: string): void
  /** Drops jobs that settled before `before`; returns how many. */
  prune(before: number, limit: number): number
  close(): void
}

interface Row {
  id: string
  doc: Uint8Array
  state: Uint8Array
}

/**
 * Jobs kept decoded: a dispatcher reads a job's row a dozen times per attempt (scan, each
 * transition, each offer) and a keeper twice per state it is offered. A row's doc never changes
 * (the id is its hash) and its state changes only through this store, which writes the new state
 * here too; so decoding each once is enough.
 */
const DECODED_KEPT = 2048

/** Opens (creating if needed) a keeper's job store. */
export function openJobStore(init: JobStoreInit): JobStore {
  const db = openSqlite(init.path, 'job store', MIGRATIONS)
  const q = {
    has: db.prepare('SELECT 1 AS one FROM jobs WHERE id = ?'),
    get: db.prepare('SELECT id, doc, state FROM jobs WHERE id = ?'),
    getState: db.prepare('SELECT state FROM jobs WHERE id = ?'),
    insert: db.prepare(
      `INSERT INTO jobs (id, doc, state, status, settled, version, run_at, look_at, dispatcher, enqueuer, created_at, updated_at, paid)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    update: db.prepare(
      `UPDATE jobs SET state = ?, status = ?, settled = ?, version = ?, run_at = ?, look_at = ?, dispatcher = ?, updated_at = ?, paid = ?
       WHERE id = ?`,
    ),
    due: db.prepare('SELECT id FROM jobs WHERE settled = 0 AND look_at <= ? ORDER BY look_at LIMIT ?'),
    lookAt: db.prepare('UPDATE jobs SET look_at = ? WHERE id = ?'),
    chargedHere: db.prepare('SELECT charged_here AS n FROM jobs WHERE id = ?'),
    noteCharged: db.prepare('UPDATE jobs SET charged_here = MAX(charged_here, ?) WHERE id = ?'),
    lookAgain: db.prepare('UPDATE jobs SET look_at = run_at WHERE settled = 0'),
    nextLook: db.prepare('SELECT MIN(look_at) AS at FROM jobs WHERE settled = 0'),
    dispatchedBy: db.prepare('SELECT id FROM jobs WHERE settled = 0 AND dispatcher = ? LIMIT ?'),
    versions: db.prepare('SELECT id, version, paid, settled FROM jobs WHERE id > ? ORDER BY id LIMIT ?'),
    counts: db.prepare('SELECT status, COUNT(*) AS n FROM jobs GROUP BY status'),
    drop: db.prepare('DELETE FROM jobs WHERE id = ?'),
    prune: db.prepare(
      'DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE settled = 1 AND updated_at < ? LIMIT ?)',
    ),
  }

  const decoded = new Map<string, StoredJob>()
  const remember = (job: StoredJob): StoredJob => {
    decoded.delete(job.id)
    if (decoded.size >= DECODED_KEPT) decoded.delete(decoded.keys().next().value as string)
    decoded.set(job.id, job)
    return job
  }
  // Rows hold what this keeper checked before storing it: read back without checking again.
  const decodeRow = (row: Row): StoredJob => {
    const held = decoded.get(row.id)
    if (held !== undefined) return held
    const doc = JobDocSchema.parse(dagCbor.decode(row.doc))
    const state = JobStateSchema.parse(dagCbor.decode(row.state))
    return remember({ id: row.id, doc, record: doc.record, state })
  }

  const readState = (id: string): JobState | undefined => {
    const held = decoded.get(id)
    if (held !== undefined) return held.state
    const row = q.getState.get(id) as { state: Uint8Array } | undefined
    return row === undefined ? undefined : JobStateSchema.parse(dagCbor.decode(row.state))
  }

  const write = (id: string, state: JobState): void => {
    const settled = isSettled(state)
    q.update.run(
      encodeState(state),
      state.status,
      settled ? 1 : 0,
      state.version,
      state.runAt,
      settled ? null : state.runAt,
      state.dispatcher,
      state.updatedAt,
      paidTotal(state),
      id,
    )
    const held = decoded.get(id)
    if (held !== undefined) decoded.set(id, { ...held, state })
  }

  const merge = (id: string, state: JobState): { state: JobState; changed: boolean } | undefined => {
    const held = readState(id)
    if (held === undefined) return undefined
    const kept = mergeStates(held, state)
    if (sameState(kept, held)) return { state: held, changed: false }
    write(id, kept)
    return { state: kept, changed: true }
  }

  return {
    has: (id) => q.has.get(id) !== undefined,
    get(id) {
      const held = decoded.get(id)
      if (held !== undefined) return held
      const row = q.get.get(id) as Row | undefined
      return row === undefined ? undefined : decodeRow(row)
    },
    put(id, doc, state) {
      // a savepoint: its own transaction, or a part of a batch's
      db.exec('SAVEPOINT job_put')
      try {
        const merged = merge(id, state)
        let result: { state: JobState; added: boolean; changed: boolean }
        if (merged !== undefined) result = { ...merged, added: false }
        else {
          const settled = isSettled(state)
          q.insert.run(
            id,
            canonicalBytes(doc),
            encodeState(state),
            state.status,
            settled ? 1 : 0,
            state.version,
            state.runAt,
            settled ? null : state.runAt,
            state.dispatcher,
            doc.record.enqueuer,
            doc.record.createdAt,
            state.updatedAt,
            paidTotal(state),
          )
          result = { state, added: true, changed: true }
        }
        db.exec('RELEASE job_put')
        return result
      } catch (err) {
        db.exec('ROLLBACK TO job_put')
        db.exec('RELEASE job_put')
        decoded.delete(id)
        throw err
      }
    },
    batch(body) {
      try {
        return transaction(db, body)
      } catch (err) {
        // the states written in it were kept decoded too
        decoded.clear()
        throw err
      }
    },
    // one UPDATE at most, read and written with no await between: its own transaction
    merge: (id, state) => merge(id, state),
    due: (now, limit) => (q.due.all(now, limit) as Array<{ id: string }>).map((r) => r.id),
    lookAt(id, at) {
      q.lookAt.run(at, id)
    },
    chargedHere(id) {
      const row = q.chargedHere.get(id) as { n: number } | undefined
      return row?.n ?? 0
    },
    noteCharged(id, total) {
      q.noteCharged.run(total, id)
    },
    lookAgain() {
      q.lookAgain.run()
    },
    nextLook() {
      const row = q.nextLook.get() as { at: number | null }
      return row.at ?? undefined
    },
    dispatchedBy: (peer, limit) =>
      (q.dispatchedBy.all(peer, limit) as Array<{ id: string }>).map((r) => r.id),
    versions: ({ after = '', limit }) =>
      (
        q.versions.all(after, limit) as Array<{ id: string; version: number; paid: number; settled: number }>
      ).map((r) => ({
        id: r.id,
        version: r.version,
        paid: r.paid,
        settled: r.settled === 1,
      })),
    list({ status, enqueuer, after = '', limit }) {
      const where = ['id > ?']
      const params: string[] = [after]
      if (status !== undefined) {
        where.push('status = ?')
        params.push(status)
      }
      if (enqueuer !== undefined) {
        where.push('enqueuer = ?')
        params.push(enqueuer)
      }
      const rows = db
        .prepare(`SELECT id, doc, state FROM jobs WHERE ${where.join(' AND ')} ORDER BY id LIMIT ?`)
        .all(...params, limit) as unknown as Row[]
      return rows.map(decodeRow)
    },
    counts() {
      const counts = Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>
      for (const row of q.counts.all() as Array<{ status: JobStatus; n: number }>) counts[row.status] = row.n
      return counts
    },
    drop(id) {
      q.drop.run(id)
      decoded.delete(id)
    },
    prune(before, limit) {
      const pruned = Number(q.prune.run(before, limit).changes)
      if (pruned > 0) decoded.clear()
      return pruned
    },
    close() {
      db.close()
    },
  }
}
