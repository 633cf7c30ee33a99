/** sha-256 for browser bundles, in place of `sha256.ts`: @noble/hashes, synchronous like node:crypto's. */
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js'

export function sha256(bytes: Uint8Array): Uint8Array {
  return nobleSha256(bytes)
}
