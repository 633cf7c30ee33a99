import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { cidForBytes } from '../../src/content/index.ts'
import { signCovenant } from '../../src/covenant/index.ts'
import {
  type Certificate,
  type Conflict,
  verifyCertificate,
  verifyConflict,
} from '../../src/exec/certificate.ts'
import { selectExecutors } from '../../src/exec/executor-selection.ts'
import {
  certificateFromJSON,
  certificateToJSON,
  conflictFromJSON,
  conflictToJSON,
} from '../../src/exec/json.ts'
import { outputHash } from '../../src/exec/output.ts'
import { type Receipt, signReceipt } from '../../src/exec/receipt.ts'
import { createRequest } from '../../src/exec/request.ts'
import { canonicalBytes, generateKey, keyId, type PrivateKey } from '../../src/keys/index.ts'
import { candidatesOf, executingCovenant, makeNodes, type TestNode } from '../fixtures/exec-cluster.ts'

const fn = cidForBytes(new TextEncoder().encode('a manifest'), 'dag-cbor').toString()
const output = { value: { sum: 3 }, logs: ['adding'], error: null }
const forged = { value: { sum: 4 }, logs: [], error: null }
const BUILD = 'bd'.repeat(32)
const OTHER_BUILD = 'be'.repeat(32)

describe('certificates and conflicts', () => {
  let caller: PrivateKey
  let nodes: TestNode[]
  let manifest: { tags: string[]; publisher: string }
  let cert: Certificate
  let conflict: Conflict
  let chosen: TestNode[]
  let sign: (n: TestNode, o: typeof output, build?: string) => Receipt

  before(async () => {
    caller = await generateKey()
    nodes = await makeNodes(6)
    manifest = { tags: [], publisher: keyId(await generateKey()) }
    const { request, id } = createRequest(caller, { fn, export: 'add', args: [1, 2], k: 3, q: 2 })
    const { ordered } = selectExecutors({
      requestId: id,
      manifest,
      limits: request,
      candidates: candidatesOf(nodes),
      k: 3,
    })
    chosen = ordered.map((p) => nodes.find((n) => n.peer === p)!)
    sign = (n: TestNode, o: typeof output, build = BUILD) =>
      signReceipt(n.key, { request: id, outputHash: outputHash(o), fuel: 7, covenantVersion: 1, build })
    const receipts = [sign(chosen[0], output), sign(chosen[1], output)]
    cert = { request, id, outputHash: outputHash(output), receipts }
    const liar = sign(chosen[2], forged)
    conflict = {
      request: id,
      executor: chosen[2].peer,
      receipt: liar,
      agreedOutputHash: cert.outputHash,
      agreed: receipts,
    }
  })

  it('verifies a certificate, with the output it certifies and against the selection rule', () => {
    assert.equal(verifyCertificate(cert).ok, true)
    const r = verifyCertificate(cert, { output, candidates: candidatesOf(nodes), manifest })
    assert.deepEqual(r.value, { sum: 3 })
    assert.throws(() => verifyCertificate(cert, { output: forged }), { code: 'INVALID_CERTIFICATE' })
    assert.throws(() => verifyCertificate(cert, { quorum: 3 }), { code: 'INVALID_CERTIFICATE' })
    // An executor the rule would not pick (its covenant refuses the limits asked) is refused.
    const strict = chosen[1]
    const candidates = candidatesOf(nodes).map((c) =>
      c.peer === strict.peer
        ? { ...c, covenant: signCovenant(strict.key, executingCovenant({ maxFuel: 1 }), 2) }
        : c,
    )
    assert.throws(() => verifyCertificate(cert, { candidates, manifest }), /not an eligible executor/)
    assert.throws(() => verifyCertificate(cert, { candidates }), { code: 'INVALID_INPUT' })
  })

  it('refuses tampered or insufficient certificates', () => {
    const [a, b] = cert.receipts
    const otherRequest = createRequest(caller, { fn, export: 'add', args: [1, 2] })
    const flipped = new Uint8Array(a.signature)
    flipped[0] ^= 1
    const cases: Array<[string, unknown]> = [
      ['request changed', { ...cert, request: { ...cert.request, args: [1, 3] } }],
      ['id of another request', { ...cert, id: otherRequest.id }],
      ['another request with the same receipts', { ...cert, request: otherRequest.request }],
      ['receipt signature corrupted', { ...cert, receipts: [{ ...a, signature: flipped }, b] }],
      ['receipt fuel changed', { ...cert, receipts: [{ ...a, fuel: 1 }, b] }],
      ['same executor twice', { ...cert, receipts: [a, a] }],
      ['fewer than q', { ...cert, receipts: [a] }],
      ['another output hash', { ...cert, outputHash: outputHash(forged) }],
      ['mixed hashes', { ...cert, receipts: [a, conflict.receipt] }],
      ['malformed', { ...cert, receipts: 'x' }],
    ]
    for (const [what, bad] of cases)
      assert.throws(() => verifyCertificate(bad), { code: 'INVALID_CERTIFICATE' }, what)
  })

  it('survives a JSON round trip (signatures in base64) for the HTTP API and browsers', () => {
    const json = JSON.parse(JSON.stringify(certificateToJSON(cert)))
    assert.equal(typeof json.receipts[0].signature, 'string')
    const back = certificateFromJSON(json)
    assert.deepEqual(canonicalBytes(back), canonicalBytes(cert))
    assert.equal(verifyCertificate(back, { output }).ok, true)
    const c = conflictFromJSON(JSON.parse(JSON.stringify(conflictToJSON(conflict))))
    assert.deepEqual(canonicalBytes(c), canonicalBytes(conflict))
    assert.throws(
      () => certificateFromJSON({ ...json, receipts: [{ ...json.receipts[0], signature: '!!' }] }),
      {
        code: 'INVALID_CERTIFICATE',
      },
    )
  })

  it('verifies conflict evidence, alone and against the certificate', () => {
    assert.equal(verifyConflict(conflict).conflict.executor, chosen[2].peer)
    assert.equal(verifyConflict(conflict, cert).ok, true)
    const flipped = new Uint8Array(conflict.receipt.signature)
    flipped[3] ^= 1
    const honest = cert.receipts[0]
    const cases: Array<[string, unknown, unknown?]> = [
      ['accused signature corrupted', { ...conflict, receipt: { ...conflict.receipt, signature: flipped } }],
      ['accused is someone else', { ...conflict, executor: chosen[0].peer }],
      [
        'no disagreement',
        { ...conflict, executor: honest.executor, receipt: honest, agreed: [cert.receipts[1]] },
      ],
      ['another request', { ...conflict, request: createRequest(caller, { fn, export: 'f' }).id }],
      ['agreed hash is not the agreeing receipts', { ...conflict, agreedOutputHash: 'ee'.repeat(32) }],
      ['agreeing receipt repeated', { ...conflict, agreed: [honest, honest] }],
      ['certificate of another output', conflict, { ...cert, outputHash: conflict.receipt.outputHash }],
      ['malformed', { ...conflict, agreed: [] }],
    ]
    for (const [what, bad, certificate] of cases)
      assert.throws(() => verifyConflict(bad, certificate), { code: 'INVALID_CONFLICT' }, what)
  })

  it('refuses evidence that holds an executor to the output of another sandbox build', () => {
    // The framer: the accused honestly computed `forged` on its own build; the agreeing receipts
    // are real too, but made by another build, which may honestly compute something else.
    const onItsBuild = sign(chosen[2], forged, OTHER_BUILD)
    const framed = { ...conflict, receipt: onItsBuild }
    assert.throws(() => verifyConflict(framed), {
      code: 'INVALID_CONFLICT',
      message: /another sandbox build/,
    })
    assert.throws(() => verifyConflict(framed, cert), { code: 'INVALID_CONFLICT' })
    // one agreeing receipt of another build is enough to refuse: the evidence must be all one build
    const mixed = { ...conflict, agreed: [cert.receipts[0], sign(chosen[1], output, OTHER_BUILD)] }
    assert.throws(() => verifyConflict(mixed), { code: 'INVALID_CONFLICT', message: /another sandbox build/ })
    // and the same disagreement between executors of one build is evidence, whichever build it is
    const sameOtherBuild = {
      ...framed,
      agreed: [sign(chosen[0], output, OTHER_BUILD), sign(chosen[1], output, OTHER_BUILD)],
    }
    assert.equal(verifyConflict(sameOtherBuild).ok, true)
  })
})
