import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { sha256 } from '@noble/hashes/sha2.js'
import { base58btc } from 'multiformats/bases/base58'
import { CID } from 'multiformats/cid'
import * as Digest from 'multiformats/hashes/digest'
import {
  assertBlock,
  cidForBytes,
  cidString,
  DAG_CBOR_CODEC,
  parseCid,
  RAW_CODEC,
  verifyBlock,
} from '../../src/content/index.ts'
import { errorCode as code } from '../fixtures/errors.ts'

const bytes = new TextEncoder().encode('hello covenant')

describe('cid', () => {
  it('makes CIDv1 sha2-256 raw and dag-cbor CIDs that round trip through text', () => {
    const raw = cidForBytes(bytes)
    const cbor = cidForBytes(bytes, 'dag-cbor')
    assert.equal(raw.version, 1)
    assert.equal(raw.code, RAW_CODEC)
    assert.equal(cbor.code, DAG_CBOR_CODEC)
    assert.equal(raw.multihash.code, 0x12)
    assert.deepEqual(raw.multihash.digest, sha256(bytes))
    assert.ok(raw.toString().startsWith('bafkrei'))
    assert.ok(parseCid(raw.toString()).equals(raw))
    assert.ok(parseCid(cbor.toString()).equals(cbor))
    // the same CID in another base is the same CID
    assert.ok(parseCid(raw.toString(base58btc)).equals(raw))
  })

  it('rejects text that is not a supported CID with INVALID_CID', () => {
    const v0 = CID.createV0(Digest.create(0x12, sha256(bytes))).toString()
    const json = CID.createV1(0x0200, Digest.create(0x12, sha256(bytes))).toString()
    const identity = CID.createV1(RAW_CODEC, Digest.create(0x00, bytes)).toString()
    for (const bad of ['', 'hello', 'bafy', v0, json, identity, 'b'.repeat(300)])
      assert.equal(
        code(() => parseCid(bad)),
        'INVALID_CID',
        bad,
      )
    assert.equal(
      code(() => parseCid(42 as unknown as string)),
      'INVALID_CID',
    )
  })

  it('verifies blocks against their CID', () => {
    const cid = cidForBytes(bytes)
    assert.equal(verifyBlock(cid, bytes), true)
    const tampered = bytes.slice()
    tampered[0] ^= 1
    assert.equal(verifyBlock(cid, tampered), false)
    assert.equal(verifyBlock(cid, bytes.subarray(1)), false)
    assert.doesNotThrow(() => assertBlock(cid, bytes))
    assert.equal(
      code(() => assertBlock(cid, tampered)),
      'HASH_MISMATCH',
    )
  })

  it('cidString answers the same for a text it has seen: canonical, of its codec, and nothing else', () => {
    const raw = cidForBytes(bytes)
    const cbor = cidForBytes(bytes, 'dag-cbor')
    const anyCid = cidString()
    const rawOnly = cidString('raw')
    const cborOnly = cidString('dag-cbor')
    // twice each, so the second answer comes from what the first one kept
    for (let round = 0; round < 2; round++) {
      assert.equal(anyCid.safeParse(raw.toString()).success, true)
      assert.equal(rawOnly.safeParse(raw.toString()).success, true)
      assert.equal(cborOnly.safeParse(raw.toString()).success, false)
      assert.equal(cborOnly.safeParse(cbor.toString()).success, true)
      assert.equal(rawOnly.safeParse(cbor.toString()).success, false)
      // the same CID spelled in another base is not its one id string, before or after
      assert.equal(anyCid.safeParse(raw.toString(base58btc)).success, false)
      assert.equal(anyCid.safeParse('hello').success, false)
    }
  })
})
