/**
 * The SDK's Node-only helpers, gathered so a bundler can swap them for
 * `node-helpers.browser.ts`: package.json's `browser` field maps this file to that one, the way
 * `@libp2p/crypto` swaps its Node crypto for WebCrypto. Each helper imports its Node modules
 * lazily, inside the function.
 */
export { defaultKeyPath, loadCallerKey, loadCallerTicket, openCallerLedger } from './caller-key.ts'
export { findDevnetNodes } from './devnet-lookup.ts'
export { bundleFunctionFile, inspectHere } from './module-check.ts'
