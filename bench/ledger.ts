/**
 * Ledger benchmark: what accounting adds to one call, per call, on files like a node's.
 *
 * - executor, on the call's path: `admit` before the run and `signed` after it — all that
 *   accounting adds to a call's latency at an executor;
 * - executor, after the call: `recordCertified` when the certificate comes (its verification
 *   included), and `applyCheque` when the caller pays per call;
 * - caller, after the call: `recordCertified` (verification included), `settle` (one cheque per
 *   executor in the certificate) and `acknowledge` for each reply;
 * - the certificate's verification alone, the larger part of both `recordCertified`s.
 *
 * Certificates are built before timing (k = 3, q = 3, the three executors the whole view) and
 * checked against that view, as a node checks them against its peer table. Prints a table and writes
 * bench/results/ledger-latest.json.
 *
 *   npm run bench:ledger
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { signCovenant } from '../src/covenant/index.ts'
import {
  createRequest,
  createView,
  outputHash,
  type SelectionManifest,
  signReceipt,
  verifyCertificate,
  verifyConflict,
} from '../src/exec/index.ts'
import { generateKey, keyId } from '../src/keys/index.ts'
import { openPayeeLedger, openPayerLedger, type SideVerifiers } from '../src/ledger/index.ts'
import { latency, printTable, writeResults } from './report.ts'

const CALLS = 2000
const WARMUP = 200
const FN = 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku'
const BUILD = 'bd'.repeat(32)
const OUTPUT = { json: '"Hello, Ada!"', logs: [], error: null }

const dir = await mkdtemp(join(tmpdir(), 'covenant-bench-ledger-'))
const caller = await generateKey()
const executors = await Promise.all(
  [0, 1, 2].map(async () => {
    const key = await generateKey()
    return { key, peer: keyId(key), covenant: signCovenant(key, { execute: { enabled: true } }, 1) }
  }),
)
const view = createView(executors.map((e) => e.covenant))
const manifest: SelectionManifest = { tags: [], publisher: keyId(caller) }
const trust = { view, manifest }
const verifiers: SideVerifiers = {
  verifyCertificate: (value) => verifyCertificate(value, trust).certificate,
  verifyConflict: (value) => verifyConflict(value, trust).conflict,
}
const payees = executors.map((e, i) =>
  openPayeeLedger({
    path: join(dir, `executor-${i}.db`),
    key: e.key,
    covenant: () => e.covenant,
    maxExposures: 1e6,
    ...verifiers,
  }),
)
const payer = openPayerLedger({ path: join(dir, 'caller.db'), key: caller, ...verifiers })
for (const e of executors) payer.learnCovenant(e.covenant)

const runs = Array.from({ length: WARMUP + CALLS }, (_, i) => {
  const { request, id } = createRequest(caller, {
    fn: FN,
    export: 'greet',
    args: ['Ada'],
    k: 3,
    q: 3,
    nonce: `bench-${i}-nonce`,
  })
  const receipts = executors.map((e) =>
    signReceipt(e.key, {
      request: id,
      outputHash: outputHash(OUTPUT),
      fuel: 3,
      covenantVersion: 1,
      build: BUILD,
    }),
  )
  return { id, request, certificate: { request, id, outputHash: outputHash(OUTPUT), receipts, skipped: [] } }
})

const onPath: number[] = []
const afterCall: number[] = []
const afterCallPaid: number[] = []
const callerSide: number[] = []
const verifyOnly: number[] = []
for (const [i, run] of runs.entries()) {
  // executor 0 measures; 1 and 2 keep their ledgers in step so the caller's cheques go somewhere
  let t = performance.now()
  const admission = payees[0].admit({ id: run.id, ...run.request })
  admission.signed(run.certificate.receipts[0])
  const pathMs = performance.now() - t
  t = performance.now()
  payees[0].recordCertified(run.certificate)
  const recordMs = performance.now() - t
  for (const [j, p] of payees.entries())
    if (j > 0) {
      p.admit({ id: run.id, ...run.request }).signed(run.certificate.receipts[j])
      p.recordCertified(run.certificate)
    }
  t = performance.now()
  verifyCertificate(run.certificate, trust)
  const verifyMs = performance.now() - t

  t = performance.now()
  payer.recordCertified(run.certificate)
  const cheques = payer.settle()
  let callerMs = performance.now() - t
  let chequeMs = 0
  for (const cheque of cheques) {
    const payee = payees[executors.findIndex((e) => e.peer === cheque.payee)]
    t = performance.now()
    const { best } = payee.applyCheque(cheque)
    if (payee === payees[0]) chequeMs = performance.now() - t
    t = performance.now()
    payer.acknowledge(best)
    callerMs += performance.now() - t
  }
  if (i < WARMUP) continue
  onPath.push(pathMs)
  afterCall.push(recordMs)
  afterCallPaid.push(recordMs + chequeMs)
  callerSide.push(callerMs)
  verifyOnly.push(verifyMs)
}

const rows = {
  'executor, on the call’s path (admit + signed)': latency(onPath),
  'executor, after the call (recordCertified)': latency(afterCall),
  'executor, after the call, paid per call (+ applyCheque)': latency(afterCallPaid),
  'caller, after the call (recordCertified + settle + 3 acks)': latency(callerSide),
  'of which: verifyCertificate alone (k = 3)': latency(verifyOnly),
}
console.log(`accounting per call, ${CALLS} calls (ms)`)
printTable(
  ['who', 'p50', 'p99', 'mean'],
  Object.entries(rows).map(([who, l]) => [who, l.p50, l.p99, l.mean]),
)
const file = await writeResults('ledger', { calls: CALLS, k: 3, rows })
console.log(`wrote ${file}`)

for (const p of payees) p.close()
payer.close()
await rm(dir, { recursive: true, force: true })
