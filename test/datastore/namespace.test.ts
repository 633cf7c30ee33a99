import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { peerIdFromString } from '@libp2p/peer-id'
import { parseCid } from '../../src/content/index.ts'
import {
  createNamespace,
  namespaceId,
  namespaceKeyBytes,
  updateNamespace,
  verifyDescriptor,
} from '../../src/datastore/index.ts'
import { generateKey, keyId } from '../../src/keys/index.ts'
import { errorCode } from '../fixtures/errors.ts'

describe('namespaces', () => {
  it('derives one id from the owner and the name, usable as a point in XOR space', async () => {
    const owner = await generateKey()
    const id = namespaceId(keyId(owner), 'site')
    assert.equal(namespaceId(keyId(owner), 'site'), id)
    assert.notEqual(namespaceId(keyId(owner), 'site2'), id)
    assert.notEqual(namespaceId(keyId(await generateKey()), 'site'), id)
    assert.equal(parseCid(id).toString(), id)
    assert.deepEqual(namespaceKeyBytes(id), parseCid(id).bytes)
    // another spelling of the owner's id is refused, so one owner has one namespace per name
    const otherSpelling = peerIdFromString(keyId(owner)).toCID().toString()
    assert.equal(
      errorCode(() => namespaceId(otherSpelling, 'site')),
      'INVALID_INPUT',
    )
    for (const name of ['', '.hidden', 'a b', 'é', 'x'.repeat(129)])
      assert.equal(
        errorCode(() => namespaceId(keyId(owner), name)),
        'INVALID_INPUT',
        name,
      )
  })

  it('signs a private genesis with the default policy, and verifies it', async () => {
    const owner = await generateKey()
    const { id, descriptor } = createNamespace(owner, { name: 'site' })
    assert.equal(id, namespaceId(keyId(owner), 'site'))
    assert.equal(descriptor.version, 1)
    assert.equal(descriptor.public, false)
    assert.deepEqual(descriptor.policy, { minReplicas: 3, minQuorum: 2, certifiers: 'any' })
    assert.deepEqual(verifyDescriptor(descriptor), descriptor)
    const stranger = keyId(await generateKey())
    for (const bad of [
      { ...descriptor, public: true },
      { ...descriptor, owner: stranger },
      { ...descriptor, policy: { ...descriptor.policy, minQuorum: 1 } },
      { ...descriptor, signature: new Uint8Array(64) },
      { ...descriptor, extra: 1 },
      'descriptor',
    ])
      assert.equal(
        errorCode(() => verifyDescriptor(bad)),
        'NAMESPACE_INVALID',
      )
  })

  it('refuses policies that make no sense, and updates only by the owner', async () => {
    const owner = await generateKey()
    const bad = [
      { minReplicas: 2, minQuorum: 3 },
      { minReplicas: 0 },
      { minReplicas: 17 },
      { certifiers: { vouchedBy: [] } },
      { certifiers: { vouchedBy: [keyId(owner), keyId(owner)] } },
      { certifiers: 'some' },
    ]
    for (const policy of bad)
      assert.equal(
        errorCode(() => createNamespace(owner, { name: 'n', policy: policy as never })),
        'INVALID_INPUT',
        JSON.stringify(policy),
      )
    const { descriptor } = createNamespace(owner, { name: 'n', policy: { minQuorum: 1 } })
    assert.deepEqual(descriptor.policy, { minReplicas: 3, minQuorum: 1, certifiers: 'any' })
    const v2 = updateNamespace(owner, descriptor, { public: true })
    assert.deepEqual([v2.version, v2.public, v2.policy], [2, true, descriptor.policy])
    const stranger = await generateKey()
    assert.equal(
      errorCode(() => updateNamespace(stranger, descriptor, {})),
      'INVALID_INPUT',
    )
  })
})
