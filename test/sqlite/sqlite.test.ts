import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { describe, it, type TestContext } from 'node:test'
import { DATASTORE_SCHEMA_VERSION, openDatastore } from '../../src/datastore/index.ts'
import { type Migration, openSqlite, transaction } from '../../src/sqlite/index.ts'
import { errorCode as code } from '../fixtures/errors.ts'

async function tempFile(t: TestContext, name = 'db.sqlite'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'covenant-sqlite-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return join(dir, 'nested', name)
}

const version = (db: DatabaseSync) =>
  (db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version

const STEPS: Migration[] = [
  'CREATE TABLE t (a INTEGER NOT NULL) STRICT',
  'ALTER TABLE t ADD COLUMN b TEXT',
  (db) => db.exec("UPDATE t SET b = 'moved'"),
]

describe('openSqlite', () => {
  it('creates the folder and the file, in WAL, at the last step', async (t) => {
    const path = await tempFile(t)
    const db = openSqlite(path, 'test store', STEPS)
    assert.equal(version(db), 3)
    assert.equal((db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode, 'wal')
    db.exec("INSERT INTO t (a, b) VALUES (1, 'x')")
    db.close()
  })

  it('runs only the steps a file lacks, and keeps its rows', async (t) => {
    const path = await tempFile(t)
    const old = openSqlite(path, 'test store', STEPS.slice(0, 1))
    old.exec('INSERT INTO t (a) VALUES (7)')
    old.close()
    const db = openSqlite(path, 'test store', STEPS)
    assert.deepEqual({ ...(db.prepare('SELECT a, b FROM t').get() as object) }, { a: 7, b: 'moved' })
    assert.equal(version(db), 3)
    db.close()
  })

  it('refuses a file written by newer code with INTERNAL, and leaves it as it was', async (t) => {
    const path = await tempFile(t)
    const db = openSqlite(path, 'test store', STEPS)
    db.exec('INSERT INTO t (a) VALUES (1)')
    db.exec('PRAGMA user_version = 9')
    db.close()
    assert.equal(
      code(() => openSqlite(path, 'test store', STEPS)),
      'INTERNAL',
    )
    assert.throws(
      () => openSqlite(path, 'test store', STEPS),
      /test store .* newer than this code knows \(3\)/,
    )
    const raw = new DatabaseSync(path)
    assert.equal(version(raw), 9)
    assert.equal((raw.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n, 1)
    raw.close()
  })

  it('rolls a failing step back whole: the file stays at the step before it', async (t) => {
    const path = await tempFile(t)
    openSqlite(path, 'test store', STEPS.slice(0, 1)).close()
    const broken: Migration[] = [
      STEPS[0],
      (db) => {
        db.exec('ALTER TABLE t ADD COLUMN c TEXT')
        throw new Error('disk on fire')
      },
    ]
    assert.throws(() => openSqlite(path, 'test store', broken), /disk on fire/)
    const db = openSqlite(path, 'test store', STEPS)
    const columns = (db.prepare('PRAGMA table_info(t)').all() as Array<{ name: string }>).map((c) => c.name)
    assert.deepEqual(columns, ['a', 'b'])
    db.close()
  })

  it('commits a transaction whose body returns, and rolls back one whose body throws, passing its error on', () => {
    const db = openSqlite(':memory:', 'test file', STEPS.slice(0, 1))
    const count = () => (db.prepare('SELECT COUNT(*) AS n FROM t').get() as { n: number }).n
    assert.equal(
      transaction(db, () => {
        db.exec('INSERT INTO t (a) VALUES (1), (2)')
        return 'done'
      }),
      'done',
    )
    assert.equal(count(), 2)
    assert.throws(
      () =>
        transaction(db, () => {
          db.exec('INSERT INTO t (a) VALUES (3)')
          throw new Error('the body failed')
        }),
      /the body failed/,
    )
    assert.equal(count(), 2)
    assert.equal(db.isTransaction, false)
    db.close()
  })

  it('brings a datastore file of schema 1 to the current schema: its revocations hold from seq 0, its namespaces keep no holders yet', async (t) => {
    const path = await tempFile(t, 'datastore.db')
    // No run is verified here: only the file's schema is looked at.
    const verifyRun = () => {
      throw new Error('not called')
    }
    openDatastore({ path, verifyRun }).close()
    // Rewind the file to what schema 1 wrote: revocations without their seq, namespaces without
    // the holders their node counted (step 3).
    const raw = new DatabaseSync(path)
    raw.exec(`ALTER TABLE namespaces DROP COLUMN holders;
      INSERT INTO namespaces VALUES ('ns', x'00', x'00', 0, 'cid', 0);
      DROP TABLE revocations;
      CREATE TABLE revocations (ns TEXT NOT NULL, cid TEXT NOT NULL, revoked TEXT NOT NULL,
        effective INTEGER NOT NULL, bytes BLOB NOT NULL, PRIMARY KEY (ns, cid)) STRICT;
      CREATE INDEX revocations_revoked ON revocations (ns, revoked, effective);
      INSERT INTO revocations VALUES ('ns', 'cid', 'grant', 5, x'00');
      PRAGMA user_version = 1`)
    raw.close()
    openDatastore({ path, verifyRun }).close()
    const after = new DatabaseSync(path)
    assert.equal(version(after), DATASTORE_SCHEMA_VERSION)
    assert.equal(DATASTORE_SCHEMA_VERSION, 3)
    assert.deepEqual(
      { ...(after.prepare('SELECT cid, seq FROM revocations').get() as object) },
      { cid: 'cid', seq: 0 },
    )
    assert.deepEqual(
      { ...(after.prepare('SELECT id, holders FROM namespaces').get() as object) },
      { id: 'ns', holders: '[]' },
    )
    after.close()
  })
})
