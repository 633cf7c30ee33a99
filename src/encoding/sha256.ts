/**
 * sha-256, by node:crypto in Node: four times the JavaScript one's speed at the sizes a call
 * hashes over and over on every node it touches (entries and outputs of 1 to 2 KiB: their CIDs,
 * output hashes, effects; requests, tickets, selection keys). Browser bundles take
 * `sha256.browser.ts` instead (package.json `browser` field); both give the same 32 bytes.
 */
import { hash } from 'node:crypto'

export function sha256(bytes: Uint8Array): Uint8Array {
  // a copy of the 32 bytes, never a view into a pooled buffer
  return new Uint8Array(hash('sha256', bytes, 'buffer'))
}
