import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { peerIdFromString } from '@libp2p/peer-id'
import { base36 } from 'multiformats/bases/base36'
import { CID } from 'multiformats/cid'
import {
  functionDid,
  isCanonicalCid,
  keyDid,
  keyIdOfDid,
  namespaceDid,
  namespaceResource,
  writerDid,
  writerOfDid,
} from '../../src/caps/index.ts'
import { cidForBytes } from '../../src/content/index.ts'
import { canonicalKeyId, generateKey, isKeyId, keyId } from '../../src/keys/index.ts'
import { errorCode } from '../fixtures/errors.ts'
import { testFunction, testNamespace } from './craft.ts'

describe('principals', () => {
  it('maps a key id to its did:key and back, the same Ed25519 public key', async () => {
    const key = await generateKey()
    const id = keyId(key)
    const did = keyDid(id)
    assert.match(did, /^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+$/)
    assert.equal(keyIdOfDid(did), id)
    assert.deepEqual(writerOfDid(did), { key: id })
    assert.equal(writerDid({ key: id }), did)
  })

  it('accepts only the one canonical spelling of a key id and of a did:key', async () => {
    const id = keyId(await generateKey())
    const asCid = peerIdFromString(id).toCID()
    // libp2p reads all of these as the same key: Covenant does not
    for (const other of [asCid.toString(), asCid.toString(base36)]) {
      assert.equal(peerIdFromString(other).toString(), id, 'libp2p reads it as the same key')
      assert.equal(isKeyId(other), false, other)
      assert.equal(
        errorCode(() => canonicalKeyId(other)),
        'INVALID_KEY_ID',
      )
      assert.equal(
        errorCode(() => keyDid(other)),
        'INVALID_INPUT',
      )
    }
    assert.equal(isKeyId(id), true)
    const did = keyDid(id)
    for (const bad of [
      did.replace('did:key:z', 'did:key:Z'),
      did.replace('did:key:', 'did:KEY:'),
      `${did}1`,
      did.slice(0, -1),
      'did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme', // secp256k1
      'did:key:',
      'did:web:example.com',
    ])
      assert.equal(keyIdOfDid(bad), undefined, bad)
  })

  it('names a function by its manifest CID, canonical dag-cbor base32 only', () => {
    const fn = testFunction('f')
    assert.equal(functionDid(fn), `did:covenant:fn:${fn}`)
    assert.deepEqual(writerOfDid(functionDid(fn)), { fn })
    const raw = cidForBytes(new Uint8Array([1]), 'raw').toString()
    for (const bad of [fn.toUpperCase(), raw, 'QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG', '', 'bafy'])
      assert.equal(
        errorCode(() => functionDid(bad)),
        'INVALID_INPUT',
        bad,
      )
    assert.equal(writerOfDid(`did:covenant:fn:${fn.toUpperCase()}`), undefined)
    assert.equal(isCanonicalCid(fn), true)
  })

  it('knows a canonical CID text again, and never takes another spelling or codec for it', () => {
    const fn = testFunction('g')
    const raw = cidForBytes(new Uint8Array([2]), 'raw').toString()
    const spelled36 = CID.parse(fn).toString(base36)
    for (const _ of [1, 2]) {
      assert.equal(isCanonicalCid(fn), true)
      // a raw CID is canonical as a CID, not as a dag-cbor one, before and after it was seen
      assert.equal(isCanonicalCid(raw), false)
      for (const other of [fn.toUpperCase(), spelled36, `${fn} `, fn.slice(0, -1), 42, null])
        assert.equal(isCanonicalCid(other), false, String(other))
    }
  })

  it('names a namespace as a DID and as a resource', () => {
    const ns = testNamespace('n')
    assert.equal(namespaceDid(ns), `did:covenant:ns:${ns}`)
    assert.equal(namespaceResource(ns), `covenant:ns/${ns}`)
    assert.equal(
      errorCode(() => namespaceResource('x')),
      'INVALID_INPUT',
    )
  })
})
