/**
 * The holder's certificate check (`verifyRunWithExec`), in process: an entry less than
 * FRESH_ENTRY_MS old is checked against the holder's own view (its signers must be the executors
 * the selection picks there); an older one, whose executors may have left every view since, by its
 * signatures alone, so a holder that catches up late or joins later is never stuck on it; and
 * either way the output must be the one signed, writing this namespace, read at versions the
 * request fixed.
 */
import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import type { StoreEffects, WritePolicy } from '../../../src/datastore/index.ts'
import { createRequest, outputHash, rankExecutors, signReceipt } from '../../../src/exec/index.ts'
import { generateKey, type PrivateKey } from '../../../src/keys/index.ts'
import { FRESH_ENTRY_MS, verifyRunWithExec } from '../../../src/node/services/datastore.ts'
import { SANDBOX_BUILD } from '../../../src/sandbox/index.ts'
import { BlockMap, makeNodes, type TestNode, viewOf } from '../../fixtures/exec-cluster.ts'

const NS = 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy'
const POLICY: WritePolicy = { minReplicas: 3, minQuorum: 2, certifiers: 'any' }
const NOW = 1_800_000_000_000

describe('a holder’s check of a function entry', () => {
  let nodes: TestNode[]
  let strangers: TestNode[]
  let caller: PrivateKey
  let fn: string
  let verify: ReturnType<typeof verifyRunWithExec>

  /** A run of `fn` certified by `signers` (default: the two best-ranked nodes) over an output writing `effects`. */
  const run = (
    effects: StoreEffects,
    init: { signers?: TestNode[]; reads?: Record<string, number> } = {},
  ) => {
    const { request, id } = createRequest(caller, { fn, export: 'main', reads: init.reads })
    const ranked = rankExecutors(viewOf(nodes), request, { tags: [], publisher: '' }).ordered
    const signers = init.signers ?? ranked.slice(0, 2).map((p) => nodes.find((n) => n.peer === p)!)
    const output = { json: 'null', logs: [], error: null, store: [effects] }
    const receipts = signers.map((n) =>
      signReceipt(n.key, {
        request: id,
        outputHash: outputHash(output),
        fuel: 1,
        covenantVersion: 1,
        build: SANDBOX_BUILD,
      }),
    )
    return { certificate: { request, id, outputHash: outputHash(output), receipts, skipped: [] }, output }
  }
  const entry = { ns: NS, writes: [{ key: 'entries/1', value: 'hi' }], reads: [{ key: 'count', version: 4 }] }
  const ctx = (age: number) => ({ namespace: NS, policy: POLICY, at: NOW - age })

  before(async () => {
    ;[nodes, strangers, caller] = await Promise.all([makeNodes(5), makeNodes(2), generateKey()])
    const blocks = new BlockMap()
    const published = blocks.publish(await generateKey(), 'export function main() {}', ['main'])
    fn = published.fn
    verify = verifyRunWithExec({
      view: () => viewOf(nodes),
      manifest: (cid) => (cid === fn ? published.manifest : undefined),
      now: () => NOW,
    })
  })

  it('takes a fresh run certified by the executors its view picks, and says what it writes', () => {
    const proof = run(entry, { reads: { [NS]: 5 } })
    const verified = verify(proof, ctx(0))
    assert.deepEqual(verified.effects, entry)
    assert.equal(verified.fn, fn)
    assert.equal(verified.request, proof.certificate.id)
    assert.equal(verified.replicas, 3)
    assert.deepEqual(
      verified.certifiers,
      proof.certificate.receipts.map((r) => r.executor),
    )
  })

  it('refuses a fresh run signed by keys outside its view, but takes it by its signatures once it is old', () => {
    const proof = run(entry, { signers: strangers, reads: { [NS]: 4 } })
    assert.throws(() => verify(proof, ctx(0)), { code: 'INVALID_CERTIFICATE', message: /view/ })
    assert.throws(() => verify(proof, ctx(FRESH_ENTRY_MS - 1000)), { code: 'INVALID_CERTIFICATE' })
    assert.deepEqual(verify(proof, ctx(FRESH_ENTRY_MS + 1000)).effects, entry)
  })

  it('refuses what the receipts do not sign, fresh or old', () => {
    for (const age of [0, FRESH_ENTRY_MS + 1000]) {
      const proof = run(entry, { reads: { [NS]: 4 } })
      const other = structuredClone(proof.output)
      other.store[0].writes[0].value = 'spam'
      assert.throws(() => verify({ ...proof, output: other }, ctx(age)), { code: 'INVALID_CERTIFICATE' })
      const forged = structuredClone(proof.certificate)
      forged.receipts[0].outputHash = outputHash(other)
      assert.throws(() => verify({ certificate: forged, output: other }, ctx(age)), {
        code: 'INVALID_CERTIFICATE',
      })
      assert.throws(() => verify({ ...proof, output: { ...proof.output, store: undefined } }, ctx(age)), {
        code: 'INVALID_CERTIFICATE',
      })
    }
  })

  it('refuses a malformed certificate, fresh or old, even one that names a function it knows', () => {
    for (const age of [0, FRESH_ENTRY_MS + 1000]) {
      const proof = run(entry, { reads: { [NS]: 4 } })
      const { receipts: _, ...noReceipts } = proof.certificate
      const extra = { ...proof.certificate, extra: 1 }
      const badId = { ...proof.certificate, id: 'not a cid' }
      for (const certificate of [null, 'x', { request: { fn } }, noReceipts, extra, badId])
        assert.throws(() => verify({ certificate, output: proof.output }, ctx(age)), {
          code: 'INVALID_CERTIFICATE',
        })
    }
  })

  it('refuses a run that does not write this namespace, or read it at versions the request did not fix', () => {
    const elsewhere = { ...entry, ns: 'bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku' }
    assert.throws(() => verify(run(elsewhere, { reads: { [elsewhere.ns]: 4 } }), ctx(0)), {
      code: 'INVALID_CERTIFICATE',
      message: /does not write this namespace/,
    })
    assert.throws(() => verify(run(entry), ctx(0)), { code: 'INVALID_CERTIFICATE', message: /did not fix/ })
    assert.throws(() => verify(run(entry, { reads: { [NS]: 3 } }), ctx(0)), {
      code: 'INVALID_CERTIFICATE',
      message: /did not fix/,
    })
    // a blind write (nothing read) needs no fixed version
    const blind = { ...entry, reads: [] }
    assert.deepEqual(verify(run(blind), ctx(0)).effects, blind)
  })

  it('refuses a function it does not know while the entry is fresh', async () => {
    const unknown = verifyRunWithExec({
      view: () => viewOf(nodes),
      manifest: () => undefined,
      now: () => NOW,
    })
    assert.throws(() => unknown(run(entry, { reads: { [NS]: 4 } }), ctx(0)), {
      code: 'INVALID_CERTIFICATE',
      message: /unknown/,
    })
  })
})
