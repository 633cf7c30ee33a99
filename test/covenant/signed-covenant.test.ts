import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { peerIdFromString } from '@libp2p/peer-id'
import {
  DEFAULT_COVENANT,
  decodeSignedCovenant,
  encodeSignedCovenant,
  nextCovenantVersion,
  parseCovenantYaml,
  SignedCovenantSchema,
  signCovenant,
  signedCovenantFromJSON,
  signedCovenantToJSON,
  verifySignedCovenant,
} from '../../src/covenant/index.ts'
import { generateKey, keyId, type PrivateKey } from '../../src/keys/index.ts'
import { errorCode } from '../fixtures/errors.ts'

describe('signed covenant', () => {
  let key: PrivateKey
  let other: PrivateKey
  before(async () => {
    key = await generateKey()
    other = await generateKey()
  })

  const config = parseCovenantYaml(
    'statement: math only\nexecute:\n  enabled: true\n  pricePerFuel: 0.000003 cr\n  refusedTags: [nsfw]\n',
  )

  it('signs the normalized config and verifies as value, DAG-CBOR bytes and JSON', () => {
    const sc = signCovenant(key, config, 3, 1_700_000_000_000)
    assert.equal(sc.peer, keyId(key))
    assert.equal(sc.version, 3)
    assert.deepEqual(verifySignedCovenant(sc), sc)
    assert.deepEqual(decodeSignedCovenant(encodeSignedCovenant(sc)), sc)
    const json = JSON.parse(JSON.stringify(signedCovenantToJSON(sc)))
    assert.equal(typeof json.signature, 'string')
    // money is whole nano-credits, signed as integers
    assert.equal(json.config.execute.pricePerFuel, 3000)
    assert.deepEqual(signedCovenantFromJSON(json), sc)
    // a config written with defaults left out and sizes as text signs the same full config
    const short = signCovenant(key, { store: { maxBytes: '1GiB' } }, 1, 5)
    assert.deepEqual(short.config, DEFAULT_COVENANT)
    assert.ok(SignedCovenantSchema.safeParse(short).success)
  })

  it('detects tampering with any field, and a signature by another key', () => {
    const sc = signCovenant(key, config, 1, 1000)
    const cases: Array<[string, unknown]> = [
      ['price', { ...sc, config: { ...sc.config, execute: { ...sc.config.execute, pricePerFuel: 0 } } }],
      [
        'refused tags',
        { ...sc, config: { ...sc.config, execute: { ...sc.config.execute, refusedTags: [] } } },
      ],
      ['statement', { ...sc, config: { ...sc.config, statement: 'anything goes' } }],
      ['version', { ...sc, version: 2 }],
      ['issuedAt', { ...sc, issuedAt: 2000 }],
      ['peer', { ...sc, peer: keyId(other) }],
      ['re-signed by another key', { ...signCovenant(other, config, 1, 1000), peer: sc.peer }],
    ]
    for (const [what, value] of cases)
      assert.equal(
        errorCode(() => verifySignedCovenant(value)),
        'INVALID_SIGNATURE',
        what,
      )
    const bytes = encodeSignedCovenant(sc)
    const tampered = dagCbor.decode(bytes) as Record<string, unknown>
    tampered.version = 7
    assert.equal(
      errorCode(() => decodeSignedCovenant(dagCbor.encode(tampered))),
      'INVALID_SIGNATURE',
    )
  })

  it('rejects malformed covenants with PROTOCOL_ERROR', () => {
    const sc = signCovenant(key, config, 1, 1000)
    const cases: unknown[] = [
      null,
      'covenant',
      { ...sc, extra: 1 },
      { ...sc, version: 0 },
      { ...sc, signature: new Uint8Array(10) },
      { ...sc, config: { ...sc.config, execute: { ...sc.config.execute, concurrency: -1 } } },
      { ...sc, config: { ...sc.config, colour: 'blue' } },
    ]
    for (const value of cases)
      assert.equal(
        errorCode(() => verifySignedCovenant(value)),
        'PROTOCOL_ERROR',
        JSON.stringify(value)?.slice(0, 60),
      )
    // a peer id that is none, or another spelling of the signer's key: INVALID_KEY_ID
    for (const peer of ['not a peer', peerIdFromString(sc.peer).toCID().toString()])
      assert.equal(
        errorCode(() => verifySignedCovenant({ ...sc, peer })),
        'INVALID_KEY_ID',
        peer,
      )
    assert.equal(
      errorCode(() => decodeSignedCovenant(new Uint8Array([0xa1]))),
      'PROTOCOL_ERROR',
    )
    assert.equal(
      errorCode(() => signedCovenantFromJSON({ ...signedCovenantToJSON(sc), signature: 42 })),
      'PROTOCOL_ERROR',
    )
    assert.equal(
      errorCode(() => signCovenant(key, { execute: { concurrency: 0 } }, 1)),
      'COVENANT_INVALID',
    )
    assert.equal(
      errorCode(() => signCovenant(key, config, 0)),
      'INVALID_INPUT',
    )
  })

  it('bumps the version only when the config changed', () => {
    assert.equal(nextCovenantVersion(undefined, config), 1)
    const v1 = signCovenant(key, config, 1)
    // a restart re-reads the same file: same version
    assert.equal(nextCovenantVersion(v1, parseCovenantYaml(covenantText())), 1)
    const changed = { ...config, statement: 'math and physics' }
    assert.equal(nextCovenantVersion(v1, changed), 2)
    const v2 = signCovenant(key, changed, 2)
    assert.equal(nextCovenantVersion(v2, changed), 2)
    assert.equal(nextCovenantVersion(v2, config), 3)
  })
})

function covenantText(): string {
  return 'statement: math only\nexecute:\n  enabled: true\n  refusedTags: [nsfw]\n  pricePerFuel: 3000\n'
}
