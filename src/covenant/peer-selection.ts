import { peerIdFromString } from '@libp2p/peer-id'
import { sha256 } from '../encoding/index.ts'
import { CovenantError } from '../errors/index.ts'

/** A peer's position in the key space: sha256 of its peer id's multihash bytes (as Kademlia). */
export function peerPosition(peerId: string): Uint8Array {
  let bytes: Uint8Array
  try {
    bytes = peerIdFromString(peerId).toMultihash().bytes
  } catch (err) {
    throw new CovenantError('INVALID_INPUT', `not a peer id: ${JSON.stringify(peerId)}`, { cause: err })
  }
  return sha256(bytes)
}

/** `a XOR b` for equal-length byte strings. */
export function xorDistance(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.length !== b.length) throw new CovenantError('INVALID_INPUT', 'distances need equal lengths')
  const out = new Uint8Array(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i]
  return out
}

/** Orders distances as big-endian unsigned integers. */
export function compareDistance(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i]
  return a.length - b.length
}

/**
 * The `n` peers closest to `key`: those whose sha256(peer id multihash bytes) has the smallest
 * XOR distance to sha256(key), nearest first. Duplicates count once; distinct peers never tie
 * (that would need a sha256 collision), so anyone with the same list computes the same answer.
 * Throws INVALID_INPUT on a string that is not a peer id.
 */
export function closestPeers(key: Uint8Array, peers: readonly string[], n: number): string[] {
  const target = sha256(key)
  const ranked = [...new Set(peers)].map((id) => ({ id, d: xorDistance(peerPosition(id), target) }))
  ranked.sort((a, b) => compareDistance(a.d, b.d))
  return ranked.slice(0, Math.max(0, Math.floor(n))).map((r) => r.id)
}
