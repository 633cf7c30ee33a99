/** The JSON forms of signed requests, receipts, certificates and conflicts. */

import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { toBase64 } from '../../src/encoding/index.ts'
import { CovenantError } from '../../src/errors/index.ts'
import { createRequest, type SignedRequest, signReceipt, signRefusal } from '../../src/exec/index.ts'
import {
  CertificateJSONSchema,
  certificateFromJSON,
  certificateToJSON,
  ReceiptJSONSchema,
  receiptToJSON,
  requestFromJSON,
  requestToJSON,
  SignedRequestJSONSchema,
} from '../../src/exec/json.ts'
import { canonicalBytes, generateKey } from '../../src/keys/index.ts'
import { SANDBOX_BUILD } from '../../src/sandbox/index.ts'
import { BlockMap, makeNodes, type TestNode } from '../fixtures/exec-cluster.ts'

describe('JSON forms of exec values', () => {
  let request: SignedRequest
  let id: string
  let nodes: TestNode[]
  // an argument that looks exactly like a signature in its JSON form
  const lookalike = toBase64(new Uint8Array(64).fill(7))

  before(async () => {
    nodes = await makeNodes(2)
    const fn = new BlockMap().publish(await generateKey(), 'export const f = (x) => x', ['f']).fn
    ;({ request, id } = createRequest(await generateKey(), {
      fn,
      export: 'f',
      args: [{ signature: lookalike }, lookalike],
    }))
  })

  it('carries a request both ways, its arguments exactly as given', () => {
    const json = JSON.parse(JSON.stringify(requestToJSON(request)))
    assert.equal(SignedRequestJSONSchema.safeParse(json).success, true)
    const back = requestFromJSON(json)
    assert.deepEqual(canonicalBytes(back), canonicalBytes(request))
    assert.deepEqual(back.args, [{ signature: lookalike }, lookalike])
  })

  it('carries a certificate both ways, and its JSON form matches its schema', () => {
    const receipts = nodes.map((n) =>
      signReceipt(n.key, {
        request: id,
        outputHash: 'a'.repeat(64),
        fuel: 1,
        covenantVersion: 1,
        build: SANDBOX_BUILD,
      }),
    )
    assert.equal(ReceiptJSONSchema.safeParse(receiptToJSON(receipts[0])).success, true)
    const refusal = signRefusal(nodes[1].key, id, new CovenantError('NOT_SELECTED', 'not me'))
    const other = signReceipt(nodes[0].key, {
      request: id,
      outputHash: 'b'.repeat(64),
      fuel: 1,
      covenantVersion: 1,
      build: SANDBOX_BUILD,
    })
    const skipped = [
      { peer: nodes[1].peer, refusal },
      { peer: nodes[0].peer, receipt: other },
      { peer: nodes[1].peer },
    ]
    const certificate = { request, id, outputHash: 'a'.repeat(64), receipts, skipped }
    const json = JSON.parse(JSON.stringify(certificateToJSON(certificate)))
    assert.equal(CertificateJSONSchema.safeParse(json).success, true)
    assert.equal(typeof json.skipped[0].refusal.signature, 'string')
    assert.deepEqual(canonicalBytes(certificateFromJSON(json)), canonicalBytes(certificate))
  })

  it('refuses malformed JSON forms with each type’s code', () => {
    const json = requestToJSON(request)
    const bad: unknown[] = [
      null,
      'x',
      [],
      { ...json, signature: '!!' },
      { ...json, signature: 'AAAA' },
      { ...json, extra: 1 },
    ]
    for (const value of bad) {
      assert.throws(
        () => requestFromJSON(value),
        (e: CovenantError) => e.code === 'INVALID_REQUEST',
      )
      assert.throws(
        () => certificateFromJSON({ request: value }),
        (e: CovenantError) => e.code === 'INVALID_CERTIFICATE',
      )
    }
  })
})
