import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { peerIdFromString } from '@libp2p/peer-id'
import { cidForBytes } from '../../src/content/index.ts'
import { signReceipt, verifyReceipt } from '../../src/exec/receipt.ts'
import { generateKey, keyId, type PrivateKey, signValue } from '../../src/keys/index.ts'

const request = cidForBytes(new TextEncoder().encode('a request'), 'dag-cbor').toString()
const hash = 'ab'.repeat(32)
const build = 'bd'.repeat(32)

describe('receipts', () => {
  let key: PrivateKey
  let other: PrivateKey
  before(async () => {
    key = await generateKey()
    other = await generateKey()
  })

  it('is signed by the executor over exactly its fields', () => {
    const receipt = signReceipt(key, { request, outputHash: hash, fuel: 12, covenantVersion: 3, build })
    assert.equal(receipt.executor, keyId(key))
    assert.equal(receipt.v, 3)
    assert.deepEqual(verifyReceipt(receipt), receipt)
    // The signature is over the DAG-CBOR of the receipt without its signature.
    const { signature, ...body } = receipt
    assert.deepEqual(signValue(key, body), signature)
  })

  it('refuses tampering, another signer, and malformed receipts', () => {
    const receipt = signReceipt(key, { request, outputHash: hash, fuel: 12, covenantVersion: 3, build })
    for (const change of [
      { outputHash: 'cd'.repeat(32) },
      { fuel: 13 },
      { covenantVersion: 4 },
      { build: 'be'.repeat(32) },
      { request: cidForBytes(new Uint8Array(3), 'dag-cbor').toString() },
      { executor: keyId(other) },
    ]) {
      assert.throws(
        () => verifyReceipt({ ...receipt, ...change }),
        { code: 'INVALID_SIGNATURE' },
        JSON.stringify(change),
      )
    }
    const { signature: _, ...body } = receipt
    assert.throws(() => verifyReceipt({ ...body, signature: signValue(other, body) }), {
      code: 'INVALID_SIGNATURE',
    })
    assert.throws(() => verifyReceipt({ ...receipt, outputHash: 'XY' }), { code: 'PROTOCOL_ERROR' })
    const { build: _build, ...withoutBuild } = body
    assert.throws(() => verifyReceipt({ ...withoutBuild, signature: signValue(key, withoutBuild) }), {
      code: 'PROTOCOL_ERROR',
    })
    assert.throws(() => verifyReceipt({ ...receipt, extra: 1 }), { code: 'PROTOCOL_ERROR' })
    // the executor named in another spelling of its key
    const respelled = peerIdFromString(receipt.executor).toCID().toString()
    assert.throws(() => verifyReceipt({ ...receipt, executor: respelled }), { code: 'INVALID_KEY_ID' })
    assert.throws(() => verifyReceipt(null), { code: 'PROTOCOL_ERROR' })
    assert.throws(
      () => signReceipt(key, { request: 'nope', outputHash: hash, fuel: 1, covenantVersion: 1, build }),
      {
        code: 'INVALID_INPUT',
      },
    )
  })
})
