/**
 * Ed25519 signing and checking in Node. Signing uses libp2p's keys (synchronous, node:crypto).
 * Checking uses node:crypto directly with the public key object cached per signer: libp2p rebuilds
 * that object on every call, which made a check cost ≈ 0.24 ms — and a gateway checks a request,
 * every candidate's covenant and every receipt for each call. In a browser libp2p's keys go
 * through WebCrypto and answer with promises, so bundlers take `ed25519.browser.ts` instead
 * (package.json `browser` field).
 */
import { createPublicKey, type KeyObject, verify as nodeVerify } from 'node:crypto'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { CovenantError } from '../errors/index.ts'

export function sign(key: PrivateKey, bytes: Uint8Array): Uint8Array {
  const sig = key.sign(bytes)
  if (sig instanceof Promise) throw new CovenantError('INTERNAL', 'expected a synchronous Ed25519 signer')
  return sig
}

// SubjectPublicKeyInfo header for a raw 32-byte Ed25519 key (RFC 8410).
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')
const MAX_CACHED_KEYS = 4096
const keyObjects = new Map<string, KeyObject>()

function keyObject(raw: Uint8Array): KeyObject {
  const id = Buffer.from(raw).toString('base64')
  let key = keyObjects.get(id)
  if (key === undefined) {
    key = createPublicKey({ key: Buffer.concat([SPKI_PREFIX, raw]), format: 'der', type: 'spki' })
    if (keyObjects.size >= MAX_CACHED_KEYS) keyObjects.delete(keyObjects.keys().next().value as string)
    keyObjects.set(id, key)
  }
  return key
}

export function verify(publicKey: PublicKey, bytes: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.raw.length !== 32 || signature.length !== 64) return false
  return nodeVerify(null, bytes, keyObject(publicKey.raw), signature)
}
