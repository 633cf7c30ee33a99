import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { peerIdFromString } from '@libp2p/peer-id'
import { base36 } from 'multiformats/bases/base36'
import {
  cidForBytes,
  createManifest,
  decodeManifest,
  type Manifest,
  manifestToJSON,
  verifyBlock,
} from '../../src/content/index.ts'
import { mayExecute, parseCovenantYaml } from '../../src/covenant/index.ts'
import { generateKey, keyId, type PrivateKey, signValue, verifyValue } from '../../src/keys/index.ts'
import { errorCode } from '../fixtures/errors.ts'

const code = new TextEncoder().encode('export const add = (a, b) => a + b; export default add')
const codeCid = cidForBytes(code)

describe('manifest', () => {
  let key: PrivateKey
  let other: PrivateKey
  before(async () => {
    key = await generateKey()
    other = await generateKey()
  })

  it('is signed by its publisher, stored as dag-cbor, and decodes to what was created', () => {
    const { manifest, bytes, cid } = createManifest(key, {
      code: codeCid,
      size: code.length,
      exports: ['add', 'default'],
      tags: ['math', 'demo', 'math'],
      name: 'adder',
    })
    assert.equal(cid.code, 0x71)
    assert.ok(verifyBlock(cid, bytes))
    assert.equal(manifest.publisher, keyId(key))
    assert.deepEqual(manifest.tags, ['demo', 'math'])
    const decoded = decodeManifest(bytes)
    assert.deepEqual(decoded, manifest)
    assert.ok(decoded.code.equals(codeCid))
    assert.deepEqual(manifestToJSON(decoded), {
      v: 1,
      code: codeCid.toString(),
      exports: ['add', 'default'],
      tags: ['demo', 'math'],
      publisher: keyId(key),
      name: 'adder',
      size: code.length,
      signature: Buffer.from(manifest.signature).toString('base64'),
    })
  })

  it('names its content only: the same code, exports, tags, name and publisher give the same CID', () => {
    const init = { code: codeCid, size: code.length, exports: ['add'], tags: ['demo'], name: 'adder' }
    const first = createManifest(key, init)
    const again = createManifest(key, { ...init, tags: ['demo', 'demo'] })
    assert.equal(again.cid.toString(), first.cid.toString())
    assert.equal('createdAt' in first.manifest, false)
    // anything that differs is another function
    for (const change of [{ name: 'other' }, { tags: ['x'] }, { exports: ['add', 'default'] }])
      assert.notEqual(createManifest(key, { ...init, ...change }).cid.toString(), first.cid.toString())
    assert.notEqual(createManifest(other, init).cid.toString(), first.cid.toString())
  })

  it('still reads a manifest signed with a createdAt (made before it was dropped), and checks it', () => {
    const body = {
      v: 1,
      code: codeCid,
      exports: ['add'],
      tags: [],
      publisher: keyId(key),
      size: code.length,
      createdAt: 1_700_000_000_000,
    }
    const old = { ...body, signature: new Uint8Array(signValue(key, body)) }
    assert.equal(decodeManifest(dagCbor.encode(old)).createdAt, 1_700_000_000_000)
    assert.equal(
      errorCode(() => decodeManifest(dagCbor.encode({ ...old, createdAt: 1 }))),
      'INVALID_SIGNATURE',
    )
  })

  it('leaves out an absent name (DAG-CBOR has no undefined) and still verifies', () => {
    const { manifest, bytes } = createManifest(key, { code: codeCid, size: code.length, exports: ['add'] })
    assert.equal('name' in manifest, false)
    assert.equal('name' in manifestToJSON(decodeManifest(bytes)), false)
  })

  it('detects any tampering: changed fields, another signer, added fields', () => {
    const { manifest } = createManifest(key, { code: codeCid, size: code.length, exports: ['add'] })
    const reencode = (m: Record<string, unknown>) => dagCbor.encode(m)
    const tampered: Array<[string, Record<string, unknown>, string]> = [
      ['exports', { ...manifest, exports: ['add', 'steal'] }, 'INVALID_SIGNATURE'],
      ['tags', { ...manifest, tags: ['evil'] }, 'INVALID_SIGNATURE'],
      ['code', { ...manifest, code: cidForBytes(new Uint8Array([1])) }, 'INVALID_SIGNATURE'],
      ['publisher', { ...manifest, publisher: keyId(other) }, 'INVALID_SIGNATURE'],
      ['extra field', { ...manifest, evil: true }, 'PROTOCOL_ERROR'],
      ['short signature', { ...manifest, signature: manifest.signature.subarray(1) }, 'PROTOCOL_ERROR'],
      ['dag-cbor code', { ...manifest, code: cidForBytes(code, 'dag-cbor') }, 'PROTOCOL_ERROR'],
    ]
    for (const [what, m, expected] of tampered)
      assert.equal(
        errorCode(() => decodeManifest(reencode(m))),
        expected,
        what,
      )
    const flipped = manifest.signature.slice()
    flipped[0] ^= 1
    assert.equal(
      errorCode(() => decodeManifest(reencode({ ...manifest, signature: flipped }))),
      'INVALID_SIGNATURE',
    )
    assert.equal(
      errorCode(() => decodeManifest(new Uint8Array([0xff, 0x00]))),
      'PROTOCOL_ERROR',
    )
    assert.equal(
      errorCode(() => decodeManifest(dagCbor.encode('just a string'))),
      'PROTOCOL_ERROR',
    )
  })

  it('refuses a publisher written in another spelling of its key, which would slip past refusedPublishers', () => {
    // The attack: a refused publisher signs its manifest under the CIDv1 spelling of its own key id.
    const refused = keyId(key)
    const covenant = parseCovenantYaml(`execute:\n  enabled: true\n  refusedPublishers: [${refused}]\n`)
    const { manifest } = createManifest(key, { code: codeCid, size: code.length, exports: ['add'] })
    const { signature: _, ...body } = manifest
    for (const publisher of [
      peerIdFromString(refused).toCID().toString(),
      peerIdFromString(refused).toCID().toString(base36),
    ]) {
      const respelled = { ...body, publisher }
      const bytes = dagCbor.encode({ ...respelled, signature: signValue(key, respelled) })
      // libp2p checks the signature under that spelling: only the canonical-id rule stops it
      assert.equal(verifyValue(publisher, respelled, signValue(key, respelled)), true)
      assert.equal(
        errorCode(() => decodeManifest(bytes)),
        'INVALID_KEY_ID',
      )
      const query = { tags: [], publisher, fuel: 2000, memoryMiB: 64, timeoutMs: 5000 }
      assert.equal(mayExecute(covenant, query).ok, true, 'a string comparison alone would let it through')
    }
    // and a covenant cannot name a publisher in another spelling either
    assert.equal(
      errorCode(() =>
        parseCovenantYaml(
          `execute:\n  refusedPublishers: [${peerIdFromString(refused).toCID().toString()}]\n`,
        ),
      ),
      'COVENANT_INVALID',
    )
  })

  it('refuses to create a manifest with invalid exports, tags or size', () => {
    const base = { code: codeCid, size: code.length, exports: ['add'] }
    const bad: Array<Partial<Parameters<typeof createManifest>[1]>> = [
      { exports: [] },
      { exports: ['not-an-identifier'] },
      { exports: ['a', 'a'] },
      { exports: Array.from({ length: 257 }, (_, i) => `f${i}`) },
      { tags: ['UPPER'] },
      { tags: ['-leading'] },
      { tags: ['x'.repeat(65)] },
      { tags: Array.from({ length: 33 }, (_, i) => `t${i}`) },
      { size: -1 },
      { size: 5 * 1024 * 1024 + 1 },
      { code: cidForBytes(code, 'dag-cbor') },
    ]
    for (const b of bad)
      assert.equal(
        errorCode(() => createManifest(key, { ...base, ...b })),
        'INVALID_INPUT',
        JSON.stringify(b).slice(0, 80),
      )
    const ok: Manifest = createManifest(key, {
      ...base,
      tags: Array.from({ length: 32 }, (_, i) => `t${i}`),
    }).manifest
    assert.equal(ok.tags.length, 32)
  })
})
