/**
 * The SDK's Node-only helpers, gathered so a bundler can swap them for
 * `node-helpers.browser.ts`: package.json's `browser` field maps this file to that one, the way
 * `@libp2p/crypto` swaps its Node crypto for WebCrypto. Each helper imports its Node modules
 * lazily, inside the function (the direct route to executors, its libp2p host with it).
 */
import type { DirectCaller } from './direct.ts'

export { defaultKeyPath, loadCallerKey, loadCallerTicket, openCallerLedger } from './caller-key.ts'
export { findDevnetNodes } from './devnet-lookup.ts'
export type { DirectCaller, DirectInvokeInit } from './direct.ts'
export { bundleFunctionFile, inspectHere } from './module-check.ts'

/** The SDK's own route to the executors over libp2p (direct.ts), loaded only when asked for. */
export async function openDirect(): Promise<DirectCaller> {
  const direct = await import('./direct.ts')
  return direct.openDirect()
}
