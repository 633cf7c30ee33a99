import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import { peerIdFromString } from '@libp2p/peer-id'
import { sha256 } from '@noble/hashes/sha2.js'
import { cidForBytes } from '../../src/content/index.ts'
import { closestPeers, peerPosition } from '../../src/covenant/index.ts'
import { generateKey, keyId } from '../../src/keys/index.ts'

/** Brute force: the distance as a bigint, straight from the definition. */
function distance(key: Uint8Array, peer: string): bigint {
  const a = sha256(key)
  const b = sha256(peerIdFromString(peer).toMultihash().bytes)
  let hex = ''
  for (let i = 0; i < 32; i++) hex += (a[i] ^ b[i]).toString(16).padStart(2, '0')
  return BigInt(`0x${hex}`)
}

describe('closestPeers', () => {
  let peers: string[] = []
  before(async () => {
    peers = await Promise.all(Array.from({ length: 40 }, async () => keyId(await generateKey())))
  })

  it('matches a brute-force sort by XOR distance, for many keys', () => {
    for (let i = 0; i < 50; i++) {
      const key = cidForBytes(new TextEncoder().encode(`request ${i}`)).bytes
      const brute = [...peers].sort((x, y) => {
        const dx = distance(key, x)
        const dy = distance(key, y)
        return dx < dy ? -1 : dx > dy ? 1 : 0
      })
      assert.deepEqual(closestPeers(key, peers, 5), brute.slice(0, 5))
      assert.deepEqual(closestPeers(key, peers, peers.length), brute)
    }
  })

  it('is deterministic: the same answer whatever the order or duplicates of the list', () => {
    const key = new TextEncoder().encode('namespace')
    const expected = closestPeers(key, peers, 3)
    const shuffled = [...peers].reverse()
    assert.deepEqual(closestPeers(key, [...shuffled, ...peers], 3), expected)
    assert.equal(new Set(closestPeers(key, [...peers, ...peers], 100)).size, peers.length)
    assert.deepEqual(closestPeers(key, peers, 0), [])
    assert.deepEqual(closestPeers(key, [], 3), [])
    // peerPosition is exactly the rule's sha256(peer id multihash bytes)
    const self = peers[7]
    assert.deepEqual(peerPosition(self), sha256(peerIdFromString(self).toMultihash().bytes))
  })

  it('rejects a string that is not a peer id', () => {
    assert.throws(() => closestPeers(new Uint8Array(1), [...peers, 'nope'], 3), { code: 'INVALID_INPUT' })
  })
})
