/**
 * The pay protocol's JSON forms: a certificate sent to several payees and measured for packing is
 * converted once (its JSON form kept by the object), and what goes out is exactly its JSON form,
 * read back as the same certificate.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  type Certificate,
  certificateToJSON,
  createRequest,
  outputHash,
  signReceipt,
} from '../../src/exec/index.ts'
import { generateKey, keyId } from '../../src/keys/index.ts'
import { certificateSize, payMessageFromJSON, payMessageToJSON } from '../../src/ledger/index.ts'
import { SANDBOX_BUILD } from '../../src/sandbox/index.ts'

async function certificate(): Promise<Certificate> {
  const [caller, a, b] = await Promise.all([generateKey(), generateKey(), generateKey()])
  const { request, id } = createRequest(caller, {
    fn: 'bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy',
    export: 'main',
  })
  const output = { json: '1', logs: [], error: null }
  const receipts = [a, b].map((key) =>
    signReceipt(key, {
      request: id,
      outputHash: outputHash(output),
      fuel: 3,
      covenantVersion: 1,
      build: SANDBOX_BUILD,
    }),
  )
  return { request, id, outputHash: outputHash(output), receipts, skipped: [] }
}

describe('pay messages in JSON', () => {
  it('carry each certificate in its JSON form, the same for every payee, and read back the same', async () => {
    const [one, two] = await Promise.all([certificate(), certificate()])
    const payer = one.request.caller
    const size = (c: Certificate) => JSON.stringify(certificateToJSON(c)).length
    assert.equal(certificateSize(one), size(one))
    assert.equal(certificateSize(two), size(two))
    assert.notEqual(certificateSize(one), 0)
    for (const _ of [1, 2]) {
      const json = payMessageToJSON({ payer, certificates: [one, two], invoicesAfter: 0 })
      assert.deepEqual(json.certificates, [certificateToJSON(one), certificateToJSON(two)])
      const back = payMessageFromJSON(JSON.parse(JSON.stringify(json)))
      assert.deepEqual(back.certificates, [one, two])
    }
    // two certificates that differ by one signature byte have their own forms
    const other = structuredClone(one)
    other.receipts[0].signature[0] ^= 1
    const json = payMessageToJSON({ payer: keyId(await generateKey()), certificates: [other] })
    assert.deepEqual(json.certificates, [certificateToJSON(other)])
    assert.notDeepEqual(json.certificates, [certificateToJSON(one)])
  })
})
