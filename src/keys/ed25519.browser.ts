/**
 * Ed25519 for browser bundles, in place of `ed25519.ts`: @noble/curves signs and verifies
 * synchronously (libp2p's browser keys use WebCrypto, which is async), and Ed25519 signatures are
 * deterministic, so a browser and a node produce the same bytes for the same key and message.
 */
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { ed25519 } from '@noble/curves/ed25519.js'
import { CovenantError } from '../errors/index.ts'

/** libp2p's Ed25519 private key is the 32-byte seed followed by the public key. */
const SEED_BYTES = 32

export function sign(key: PrivateKey, bytes: Uint8Array): Uint8Array {
  if (key.type !== 'Ed25519')
    throw new CovenantError('INVALID_INPUT', `expected an Ed25519 key, got ${key.type}`)
  return ed25519.sign(bytes, key.raw.subarray(0, SEED_BYTES))
}

export function verify(publicKey: PublicKey, bytes: Uint8Array, signature: Uint8Array): boolean {
  return publicKey.type === 'Ed25519' && ed25519.verify(signature, bytes, publicKey.raw)
}
