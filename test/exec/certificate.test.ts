import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { peerIdFromString } from '@libp2p/peer-id'
import { base36 } from 'multiformats/bases/base36'
import { cidForBytes } from '../../src/content/index.ts'
import { signCovenant } from '../../src/covenant/index.ts'
import { CovenantError } from '../../src/errors/index.ts'
import {
  type Certificate,
  type Conflict,
  createRequest,
  createView,
  rankExecutors,
  type SignedRequest,
  signRefusal,
  type View,
  verifyCertificate,
  verifyCertificateSignatures,
  verifyConflict,
} from '../../src/exec/index.ts'
import {
  certificateFromJSON,
  certificateToJSON,
  conflictFromJSON,
  conflictToJSON,
} from '../../src/exec/json.ts'
import { outputHash } from '../../src/exec/output.ts'
import { type Receipt, signReceipt } from '../../src/exec/receipt.ts'
import { canonicalBytes, generateKey, keyId, type PrivateKey, signValue } from '../../src/keys/index.ts'
import { executingCovenant, makeNodes, type TestNode, viewOf } from '../fixtures/exec-cluster.ts'

const fn = cidForBytes(new TextEncoder().encode('a manifest'), 'dag-cbor').toString()
const output = { json: '{"sum":3}', logs: ['adding'], error: null }
const forged = { json: '{"sum":4}', logs: [], error: null }
const BUILD = 'bd'.repeat(32)
const OTHER_BUILD = 'be'.repeat(32)

type Out = typeof output

describe('certificates and conflicts', () => {
  let caller: PrivateKey
  let nodes: TestNode[]
  let view: View
  let manifest: { tags: string[]; publisher: string }
  let request: SignedRequest
  let id: string
  /** the six nodes by rank for `request` */
  let ranked: TestNode[]
  let cert: Certificate
  let conflict: Conflict
  const sign = (n: { key: PrivateKey }, o: Out, requestId = id, build = BUILD): Receipt =>
    signReceipt(n.key, { request: requestId, outputHash: outputHash(o), fuel: 7, covenantVersion: 1, build })
  const verify = (c: unknown, extra: Partial<Parameters<typeof verifyCertificate>[1]> = {}) =>
    verifyCertificate(c, { view, manifest, ...extra })
  const refused = (
    c: unknown,
    message: RegExp,
    extra: Partial<Parameters<typeof verifyCertificate>[1]> = {},
  ) => assert.throws(() => verify(c, extra), { code: 'INVALID_CERTIFICATE', message })

  before(async () => {
    caller = await generateKey()
    nodes = await makeNodes(6)
    view = viewOf(nodes)
    manifest = { tags: [], publisher: keyId(await generateKey()) }
    ;({ request, id } = createRequest(caller, { fn, export: 'add', args: [1, 2], k: 3, q: 2 }))
    ranked = rankExecutors(view, request, manifest).ordered.map((p) => nodes.find((n) => n.peer === p)!)
    cert = {
      request,
      id,
      outputHash: outputHash(output),
      receipts: [sign(ranked[0], output), sign(ranked[1], output)],
      skipped: [],
    }
    conflict = { receipt: sign(ranked[2], forged), certificate: cert }
  })

  it('checks an old record by its signatures alone when asked, never its selection, everything else still', async () => {
    // keys no view knows: the selection check refuses them, the signatures-only check does not
    const strangers = await makeNodes(2)
    const outside = { ...cert, receipts: strangers.map((n) => sign(n, output)) }
    refused(outside, /not in the verifier's view/)
    assert.deepEqual(verifyCertificateSignatures(outside, { output }).value, { sum: 3 })
    const signaturesOnly = (c: unknown, o: Out = output, minQuorum?: number) =>
      assert.throws(() => verifyCertificateSignatures(c, { output: o, minQuorum }), {
        code: 'INVALID_CERTIFICATE',
      })
    signaturesOnly(outside, forged)
    signaturesOnly({ ...outside, receipts: [outside.receipts[0]] })
    signaturesOnly({ ...outside, receipts: [outside.receipts[0], outside.receipts[0]] })
    const bent = { ...outside.receipts[1], fuel: 8 }
    signaturesOnly({ ...outside, receipts: [outside.receipts[0], bent] })
    signaturesOnly(outside, output, 3)
  })

  it('verifies a certificate from the executors the selection picks, with the output it certifies', () => {
    const r = verify(cert, { output })
    assert.deepEqual(r.value, { sum: 3 })
    refused(cert, /does not match/, { output: forged })
    // an executor the rule would not pick in this view (its covenant refuses the fuel asked)
    const strict = signCovenant(ranked[1].key, executingCovenant({ maxFuel: 200 }), 2)
    const stricter = createView([...nodes.map((n) => n.covenant), strict])
    refused(cert, /may not execute this request: it allows at most 200 fuel/, { view: stricter })
    assert.throws(() => verify(cert, { minEligibleFraction: 2 }), { code: 'INVALID_INPUT' })
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
      ['no skipped list', { ...cert, skipped: undefined }],
    ]
    for (const [what, bad] of cases) assert.throws(() => verify(bad), { code: 'INVALID_CERTIFICATE' }, what)
  })

  it('refuses a value forged by keys made on the spot, however well they sign (the lying gateway)', async () => {
    // What a gateway can make alone: q fresh keys, each signing a receipt for the value it wants.
    const made = await Promise.all([generateKey(), generateKey()])
    const lie = {
      ...cert,
      outputHash: outputHash(forged),
      receipts: made.map((key) => sign({ key }, forged)),
    }
    refused(lie, /is not in the verifier's view/, { output: forged })
  })

  it('binds the signers to the selection: eligible peers ranked ahead must have signed or be accounted for', () => {
    // k = 3 of 6; the 4th and 5th ranked sign: every peer of the first three is skipped.
    const late = {
      ...cert,
      receipts: [sign(ranked[3], output), sign(ranked[4], output)],
    }
    refused(late, /3 eligible executors ranked ahead of the quorum/)
    refused({ ...late, skipped: ranked.slice(0, 3).map((n) => ({ peer: n.peer })) }, /3 eligible executors/)
    // Standing refusals signed by them are proof: they declined.
    const standing = (n: TestNode, code: 'COVENANT_REFUSED' | 'NOT_SELECTED' | 'PEER_BUSY') => ({
      peer: n.peer,
      refusal: signRefusal(n.key, id, new CovenantError(code)),
    })
    const proven = {
      ...late,
      skipped: [
        standing(ranked[0], 'NOT_SELECTED'),
        standing(ranked[1], 'COVENANT_REFUSED'),
        { peer: ranked[2].peer, receipt: sign(ranked[2], forged) },
      ],
    }
    assert.equal(verify(proven).ok, true)
    // One unproven skip is tolerated (a timeout), two are not; a verifier may tolerate none.
    const oneUnproven = {
      ...proven,
      skipped: [proven.skipped[0], proven.skipped[1], { peer: ranked[2].peer }],
    }
    assert.equal(verify(oneUnproven).ok, true)
    refused(oneUnproven, /at most 0 accepted/, { maxUnprovenSkips: 0 })
    // A refusal a gateway can provoke (a busy executor) proves nothing.
    refused(
      {
        ...proven,
        skipped: [standing(ranked[0], 'PEER_BUSY'), standing(ranked[1], 'PEER_BUSY'), proven.skipped[2]],
      },
      /2 eligible executors/,
    )
    // A forged proof is refused outright: a refusal signed by someone else, or for another request.
    const notTheirs = {
      peer: ranked[0].peer,
      refusal: signRefusal(ranked[5].key, id, new CovenantError('NOT_SELECTED')),
    }
    refused({ ...proven, skipped: [notTheirs, ...proven.skipped.slice(1)] }, /another executor's/)
    const otherId = createRequest(caller, { fn, export: 'add' }).id
    const stale = {
      peer: ranked[0].peer,
      refusal: signRefusal(ranked[0].key, otherId, new CovenantError('NOT_SELECTED')),
    }
    refused({ ...proven, skipped: [stale, ...proven.skipped.slice(1)] }, /another request's/)
    const flipped = { ...standing(ranked[0], 'NOT_SELECTED').refusal, signature: new Uint8Array(64) }
    refused(
      { ...proven, skipped: [{ peer: ranked[0].peer, refusal: flipped }, ...proven.skipped.slice(1)] },
      /does not verify/,
    )
    // Peers the verifier knows are dead may be skipped at no cost.
    assert.equal(verify(late, { view: viewOf(nodes, ranked.slice(0, 3)) }).ok, true)
  })

  it('tolerates views that differ while peers come and go, by one unproven skip', async () => {
    // The gateway did not know the best-ranked peer yet (it had just joined): its certificate,
    // from ranks 2 and 3, does not mention it. The verifier knows it: one unproven skip.
    const joined = { ...cert, receipts: [sign(ranked[1], output), sign(ranked[2], output)] }
    assert.equal(verify(joined).ok, true)
    // Two such peers are more than a verifier tolerates by default.
    refused({ ...cert, receipts: [sign(ranked[2], output), sign(ranked[3], output)] }, /2 eligible executors/)
    // A peer the gateway knew and the verifier does not is ignored in `skipped`.
    const [unknown] = await makeNodes(1)
    assert.equal(verify({ ...cert, skipped: [{ peer: unknown.peer }] }).ok, true)
    // A signer the verifier does not know counts for nothing (the client then rebuilds its view once).
    refused(cert, /not in the verifier's view/, { view: viewOf(nodes.filter((n) => n !== ranked[0])) })
  })

  it('refuses one key counted several times under several spellings of its id', async () => {
    const [sybil] = await makeNodes(1)
    const three = createRequest(caller, { fn, export: 'add', k: 3, q: 3 })
    const id58 = sybil.peer
    const asCid = peerIdFromString(id58).toCID()
    const spellings = [id58, asCid.toString(), asCid.toString(base36)]
    assert.equal(new Set(spellings).size, 3)
    const receipts = spellings.map((executor) => {
      const body = {
        v: 3 as const,
        request: three.id,
        outputHash: outputHash(forged),
        fuel: 7,
        executor,
        covenantVersion: 1,
        build: BUILD,
      }
      return { ...body, signature: signValue(sybil.key, body) }
    })
    const oneKey = {
      request: three.request,
      id: three.id,
      outputHash: outputHash(forged),
      receipts,
      skipped: [],
    }
    assert.throws(
      () => verify(oneKey, { view: viewOf([...nodes, sybil]) }),
      (e: CovenantError) =>
        e.code === 'INVALID_CERTIFICATE' &&
        (e.details as { cause: { code: string } }).cause.code === 'INVALID_KEY_ID',
    )
  })

  it('lets the verifier, not the caller, set the smallest quorum', async () => {
    const single = createRequest(caller, { fn, export: 'add', k: 1, q: 1 })
    const [first] = rankExecutors(view, single.request, manifest).ordered
    const one = {
      request: single.request,
      id: single.id,
      outputHash: outputHash(output),
      receipts: [sign(nodes.find((n) => n.peer === first)!, output, single.id)],
      skipped: [],
    }
    refused(one, /accepts no quorum below 2/)
    assert.equal(verify(one, { minQuorum: 1 }).ok, true)
    refused(cert, /accepts no quorum below 3/, { minQuorum: 3 })
  })

  it('refuses a certificate for limits that carve the permissive few out of the view', async () => {
    const permissive = await makeNodes(2, executingCovenant({ maxMemoryMiB: 1024 }))
    const defaults = await makeNodes(6, executingCovenant({ maxMemoryMiB: 64 }))
    const carved = createRequest(caller, { fn, export: 'add', k: 2, q: 2, memoryMiB: 128 })
    const both = {
      request: carved.request,
      id: carved.id,
      outputHash: outputHash(forged),
      receipts: permissive.map((n) => sign(n, forged, carved.id)),
      skipped: [],
    }
    refused(both, /thin eligible set/, { view: viewOf([...permissive, ...defaults]) })
    // where most nodes allow it, the same tier is fine
    assert.equal(verify(both, { view: viewOf([...permissive, ...defaults.slice(0, 1)]) }).ok, true)
  })

  it('survives a JSON round trip (signatures in base64) for the HTTP API and browsers', () => {
    const withSkips = {
      ...cert,
      skipped: [
        { peer: ranked[2].peer, refusal: signRefusal(ranked[2].key, id, new CovenantError('NOT_SELECTED')) },
      ],
    }
    const json = JSON.parse(JSON.stringify(certificateToJSON(withSkips)))
    assert.equal(typeof json.receipts[0].signature, 'string')
    const back = certificateFromJSON(json)
    assert.deepEqual(canonicalBytes(back), canonicalBytes(withSkips))
    assert.equal(verify(back, { output }).ok, true)
    const c = conflictFromJSON(JSON.parse(JSON.stringify(conflictToJSON(conflict))))
    assert.deepEqual(canonicalBytes(c), canonicalBytes(conflict))
    assert.throws(
      () => certificateFromJSON({ ...json, receipts: [{ ...json.receipts[0], signature: '!!' }] }),
      { code: 'INVALID_CERTIFICATE' },
    )
  })

  it('accepts conflict evidence only with a certificate the receiver’s view backs', async () => {
    assert.equal(verifyConflict(conflict, { view, manifest }).conflict.receipt.executor, ranked[2].peer)
    // The framer: throwaway keys "agree" on another output, against an honest executor's real receipt.
    const honest = sign(ranked[0], output)
    const throwaway = await Promise.all([generateKey(), generateKey()])
    const frame = {
      receipt: honest,
      certificate: {
        ...cert,
        outputHash: outputHash(forged),
        receipts: throwaway.map((key) => sign({ key }, forged)),
      },
    }
    assert.throws(() => verifyConflict(frame, { view, manifest }), {
      code: 'INVALID_CONFLICT',
      message: /not in the verifier's view/,
    })
    // An accused outside the view (a throwaway key, to fill stores) is no evidence either.
    const [stranger] = await makeNodes(1)
    assert.throws(
      () => verifyConflict({ ...conflict, receipt: sign(stranger, forged) }, { view, manifest }),
      {
        code: 'INVALID_CONFLICT',
        message: /not an eligible executor/,
      },
    )
    const flipped = new Uint8Array(conflict.receipt.signature)
    flipped[3] ^= 1
    const cases: Array<[string, unknown]> = [
      ['accused signature corrupted', { ...conflict, receipt: { ...conflict.receipt, signature: flipped } }],
      ['no disagreement', { ...conflict, receipt: sign(ranked[2], output) }],
      [
        'another request',
        { ...conflict, receipt: sign(ranked[2], forged, createRequest(caller, { fn, export: 'f' }).id) },
      ],
      [
        'certificate does not verify',
        { ...conflict, certificate: { ...cert, receipts: cert.receipts.slice(0, 1) } },
      ],
      ['malformed', { ...conflict, certificate: undefined }],
      [
        'the old shape, with agreeing receipts and no certificate',
        {
          request: id,
          executor: ranked[2].peer,
          receipt: conflict.receipt,
          agreedOutputHash: cert.outputHash,
          agreed: cert.receipts,
        },
      ],
    ]
    for (const [what, bad] of cases)
      assert.throws(() => verifyConflict(bad, { view, manifest }), { code: 'INVALID_CONFLICT' }, what)
  })

  it('refuses evidence that holds an executor to the output of another sandbox build', () => {
    // The accused honestly computed `forged` on its own build; the certificate is of another build.
    const framed = { ...conflict, receipt: sign(ranked[2], forged, id, OTHER_BUILD) }
    assert.throws(() => verifyConflict(framed, { view, manifest }), {
      code: 'INVALID_CONFLICT',
      message: /another sandbox build/,
    })
    // and the same disagreement with a certificate of its own build is evidence, whichever build
    const sameOtherBuild = {
      receipt: framed.receipt,
      certificate: {
        ...cert,
        receipts: [sign(ranked[0], output, id, OTHER_BUILD), sign(ranked[1], output, id, OTHER_BUILD)],
      },
    }
    assert.equal(verifyConflict(sameOtherBuild, { view, manifest }).ok, true)
  })
})
