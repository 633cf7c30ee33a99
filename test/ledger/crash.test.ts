/**
 * A ledger killed mid-settlement (SIGKILL, in a process of its own, while it writes as fast as it
 * can) loses no credit: reopened, each side holds exactly what it last committed, or the one change
 * after it, never part of a change, and settling again makes the pair whole.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { readFile, writeFile } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { after, before, describe, it } from 'node:test'
import { encodeKey, generateKey, keyId, type PrivateKey } from '../../src/keys/index.ts'
import {
  chargeFor,
  openPayeeLedger,
  openPayerLedger,
  reconcile,
  signCheque,
  verifyCheque,
} from '../../src/ledger/index.ts'
import { certifiedRun, networkOf, simpleParty, T0, tempDir } from '../fixtures/ledger.ts'

const CHILD = new URL('../fixtures/ledger-child.ts', import.meta.url).pathname
/** Committed changes seen before the kill: enough that the child is in full flow. */
const KILL_AFTER = 40

/**
 * Runs the child until it has printed `KILL_AFTER` lines, kills it, and returns every line of its
 * progress file `progress` (written before each print, and never behind the ledger).
 */
async function killMidway(args: string[], progress: string): Promise<string[]> {
  const child: ChildProcess = spawn(process.execPath, [CHILD, ...args, progress], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const stderr: string[] = []
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString()))
  let printed = 0
  const exited = once(child, 'exit')
  createInterface({ input: child.stdout! }).on('line', () => {
    if (++printed === KILL_AFTER) child.kill('SIGKILL')
  })
  const [code, signal] = await exited
  assert.equal(signal, 'SIGKILL', `the child ended by itself (${code}): ${stderr.join('')}`)
  return (await readFile(progress, 'utf8')).split('\n').filter((line) => line !== '')
}

async function keyFile(
  dir: Awaited<ReturnType<typeof tempDir>>,
  name: string,
): Promise<[PrivateKey, string]> {
  const key = await generateKey()
  const file = dir.file(name)
  await writeFile(file, encodeKey(key), { mode: 0o600 })
  return [key, file]
}

describe('a ledger killed mid-settlement', { timeout: 120_000 }, () => {
  let dir: Awaited<ReturnType<typeof tempDir>>
  before(async () => {
    dir = await tempDir()
  })
  after(() => dir.remove())

  it('payee side: keeps the last cheque it committed, whole, and takes the next', async () => {
    const [payeeKey, payeeFile] = await keyFile(dir, 'payee.key')
    const [payerKey, payerFile] = await keyFile(dir, 'payer.key')
    const path = dir.file('payee.db')
    const lines = await killMidway(['payee', path, payeeFile, payerFile], dir.file('payee.progress'))
    const last = Number(lines.at(-1)!.split(' ')[1])
    assert.ok(last >= KILL_AFTER)

    const payee = simpleParty(payeeKey)
    const ledger = openPayeeLedger({
      path,
      key: payeeKey,
      covenant: () => payee.covenant,
      ...networkOf([payee]).verifiers,
    })
    const account = ledger.account(keyId(payerKey))
    // written after its commit: the last line written is in; at most the one after it is too
    assert.ok(account.seq === last || account.seq === last + 1, `seq ${account.seq} after ${last}`)
    assert.equal(account.received, 1000 * account.seq, 'never part of a cheque')
    const best = ledger.applyCheque(
      signCheque(payerKey, {
        payee: ledger.payee,
        cumulative: 1000 * account.seq,
        seq: account.seq,
        issuedAt: T0,
      }),
    )
    assert.equal(best.applied, false)
    assert.equal(verifyCheque(best.best).cumulative, account.received, 'the cheque held is the one counted')
    const next = account.seq + 1
    assert.equal(
      ledger.applyCheque(
        signCheque(payerKey, { payee: ledger.payee, cumulative: 1000 * next, seq: next, issuedAt: T0 }),
      ).applied,
      true,
    )
    assert.equal(ledger.account(keyId(payerKey)).received, 1000 * next)
    ledger.close()
  })

  it('payer side: owes what it recorded, has paid what it signed, and settles the rest', async () => {
    const [payerKey, payerFile] = await keyFile(dir, 'caller.key')
    const [executorKey, executorFile] = await keyFile(dir, 'executor.key')
    const path = dir.file('payer.db')
    const lines = await killMidway(['payer', path, payerFile, executorFile], dir.file('payer.progress'))
    const [, lastSeq, lastCumulative] = lines.at(-1)!.split(' ').map(Number)

    const executor = simpleParty(executorKey)
    const network = networkOf([executor])
    const payee = executor.peer
    const ledger = openPayerLedger({ path, key: payerKey, now: () => T0, ...network.verifiers })
    const account = ledger.account(payee)
    const history = ledger.history({ payee, limit: 1000 })
    // the totals and the charges were written together
    assert.equal(
      account.owed,
      history.reduce((sum, c) => sum + c.amount, 0),
    )
    for (const c of history) assert.equal(c.amount, chargeFor(executor.covenant.config.execute, c.fuel!))
    // the newest cheque is the last one written down, or the one after it; it is stored whole and pending
    assert.ok(account.seq === lastSeq || account.seq === lastSeq + 1, `seq ${account.seq} after ${lastSeq}`)
    if (account.seq === lastSeq) assert.equal(account.paid, lastCumulative)
    const [pending] = ledger.pending()
    assert.deepEqual([pending.seq, pending.cumulative], [account.seq, account.paid])
    // a call recorded but not yet settled is settled now, with the next number
    const more = ledger.settle()
    assert.ok(more.length <= 1)
    assert.equal(ledger.account(payee).paid, account.owed)

    // the executor hears of every call and every cheque: the pair reconciles
    const payeeLedger = openPayeeLedger({
      path: dir.file('executor.db'),
      key: executorKey,
      covenant: () => executor.covenant,
      now: () => T0,
      ...network.verifiers,
    })
    for (let n = 0; n < history.length; n++) {
      const run = certifiedRun(network, payerKey, [executor], {
        fuel: n % 50,
        nonce: `child-call-${n}`,
        now: T0,
      })
      assert.equal(payeeLedger.recordCertified(run.certificate).status, 'charged')
    }
    for (const cheque of ledger.pending()) ledger.acknowledge(payeeLedger.applyCheque(cheque).best)
    assert.equal(reconcile(ledger.statements(), [payeeLedger.statement(keyId(payerKey))]).ok, true)
    payeeLedger.close()
    ledger.close()
  })
})
