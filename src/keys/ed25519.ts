/**
 * Ed25519 signing and checking in Node: libp2p's keys, which sign and verify synchronously with
 * node:crypto. In a browser libp2p's keys go through WebCrypto and answer with promises, so
 * bundlers take `ed25519.browser.ts` instead (package.json `browser` field).
 */
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { CovenantError } from '../errors/index.ts'

export function sign(key: PrivateKey, bytes: Uint8Array): Uint8Array {
  const sig = key.sign(bytes)
  if (sig instanceof Promise) throw new CovenantError('INTERNAL', 'expected a synchronous Ed25519 signer')
  return sig
}

export function verify(publicKey: PublicKey, bytes: Uint8Array, signature: Uint8Array): boolean {
  return publicKey.verify(bytes, signature) === true
}
