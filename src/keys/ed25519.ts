/**
 * Ed25519 signing and checking in Node, with node:crypto directly and the key objects cached (the
 * private key's per key, the public key's per signer): libp2p rebuilds
 * that object on every call, which made a check cost ≈ 0.24 ms — and a gateway checks a request,
 * every candidate's covenant and every receipt for each call. In a browser libp2p's keys go
 * through WebCrypto and answer with promises, so bundlers take `ed25519.browser.ts` instead
 * (package.json `browser` field).
 */
import {
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  sign as nodeSign,
  verify as nodeVerify,
} from 'node:crypto'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { CovenantError } from '../errors/index.ts'

// PKCS#8 header for a raw 32-byte Ed25519 seed (RFC 8410).
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
// libp2p's Ed25519 private key is the 32-byte seed followed by the public key.
const SEED_BYTES = 32
// Signing with libp2p's key rebuilds a node:crypto key object from JWK on every signature (≈ 0.1
// ms, more than the signature itself); an executor signs a receipt per call, a caller a request.
const signingKeys = new WeakMap<PrivateKey, KeyObject>()

export function sign(key: PrivateKey, bytes: Uint8Array): Uint8Array {
  if (key.type !== 'Ed25519')
    throw new CovenantError('INVALID_INPUT', `expected an Ed25519 key, got ${key.type}`)
  let keyObject = signingKeys.get(key)
  if (keyObject === undefined) {
    const seed = key.raw.subarray(0, SEED_BYTES)
    keyObject = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
    signingKeys.set(key, keyObject)
  }
  return new Uint8Array(nodeSign(null, bytes, keyObject))
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
