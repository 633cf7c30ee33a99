/**
 * The SQLite files every part keeps (blocks, datastores, jobs, ledgers, evidence) are opened one
 * way: write-ahead log, `synchronous = NORMAL`, a busy timeout, and numbered migrations that bring
 * the file to this code's schema.
 *
 * WAL + NORMAL: a killed process loses nothing committed (the log is in the OS's hands), readers
 * never wait for the writer, and a power cut may lose the last commits, which every part can make
 * good from its peers. FULL would fsync every commit.
 *
 * @example
 * ```ts
 * const db = openSqlite('/data/jobs.db', 'job store', [
 *   'CREATE TABLE jobs (id TEXT PRIMARY KEY, doc BLOB NOT NULL) STRICT',
 *   'ALTER TABLE jobs ADD COLUMN state BLOB', // added later: files at version 1 run only this
 * ])
 * ```
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { CovenantError } from '../errors/index.ts'

/** One schema step: SQL, or code for a step SQL cannot say. A released step never changes. */
export type Migration = string | ((db: DatabaseSync) => void)

/**
 * Opens (creating it and its folder if needed) the SQLite file at `path` (or `:memory:`) and runs
 * the `migrations` it has not run yet, each in its own transaction; `PRAGMA user_version` records
 * how many ran. A file written by newer code (more steps than `migrations`) is refused with
 * `INTERNAL`, since this code cannot know what it holds; `what` names the file in that error.
 */
export function openSqlite(path: string, what: string, migrations: readonly Migration[]): DatabaseSync {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  const db = new DatabaseSync(path)
  try {
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000')
    const { user_version: current } = db.prepare('PRAGMA user_version').get() as { user_version: number }
    if (current > migrations.length)
      throw new CovenantError(
        'INTERNAL',
        `${what} ${path} has schema version ${current}, newer than this code knows (${migrations.length})`,
      )
    for (let v = current; v < migrations.length; v++) {
      db.exec('BEGIN IMMEDIATE')
      try {
        const step = migrations[v]
        if (typeof step === 'string') db.exec(step)
        else step(db)
        db.exec(`PRAGMA user_version = ${v + 1}`)
        db.exec('COMMIT')
      } catch (err) {
        db.exec('ROLLBACK')
        throw err
      }
    }
  } catch (err) {
    db.close()
    throw err
  }
  return db
}

/**
 * Runs `body` (synchronous) in one immediate transaction on `db`: committed if it returns, rolled
 * back if it throws (the error passes on).
 */
export function transaction<T>(db: DatabaseSync, body: () => T): T {
  db.exec('BEGIN IMMEDIATE')
  try {
    const result = body()
    db.exec('COMMIT')
    return result
  } catch (err) {
    // an I/O error may have rolled it back already
    if (db.isTransaction) db.exec('ROLLBACK')
    throw err
  }
}
