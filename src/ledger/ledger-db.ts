/**
 * The SQLite file each side of a ledger keeps. Every change of money is one transaction, so a
 * process killed at any instant leaves the file before or after it, never between.
 */
import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { CovenantError } from '../errors/index.ts'

export interface LedgerDb {
  db: DatabaseSync
  /** runs `body` in one IMMEDIATE transaction: all of it is written, or none */
  transaction<T>(body: () => T): T
  /** throws NOT_STARTED once closed */
  assertOpen(): void
  close(): void
}

/**
 * Opens (creating if needed) a ledger file and brings its tables to the last of `migrations`
 * (`PRAGMA user_version` records how many ran; a released migration never changes).
 */
export function openLedgerDb(path: string, migrations: readonly string[], what: string): LedgerDb {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  const db = new DatabaseSync(path)
  let closed = false
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
  try {
    // WAL + NORMAL: a killed process loses nothing committed (the log is in the OS's hands);
    // a power cut may lose the last commits, which the counterparty's cumulative cheques and
    // certificates make good on the next exchange. FULL would fsync every call's charge.
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;')
    const { user_version: current } = db.prepare('PRAGMA user_version').get() as { user_version: number }
    if (current > migrations.length)
      throw new CovenantError(
        'INTERNAL',
        `${what} ${path} has schema version ${current}, newer than this code knows (${migrations.length})`,
      )
    for (let v = current; v < migrations.length; v++)
      transaction(() => {
        db.exec(migrations[v])
        db.exec(`PRAGMA user_version = ${v + 1}`)
      })
  } catch (err) {
    db.close()
    throw err
  }
  return {
    db,
    transaction,
    assertOpen() {
      if (closed) throw new CovenantError('NOT_STARTED', `the ${what} is closed`)
    },
    close() {
      if (closed) return
      closed = true
      db.close()
    },
  }
}
