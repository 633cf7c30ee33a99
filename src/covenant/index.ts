/**
 * The covenant: what a node is willing to store, serve and execute, for what price, and what it
 * refuses. The operator writes it as `covenant.yaml`; the node signs it with its key and
 * publishes it; anyone can check a request against it with the pure `may*` functions, and pick
 * the peers responsible for a key with {@link closestPeers}.
 *
 * @example
 * ```ts
 * const config = parseCovenantYaml('execute:\n  enabled: true\n  refusedTags: [nsfw]\n')
 * mayExecute(config, { tags: ['nsfw'], publisher, fuel: 1000, memoryMiB: 16, timeoutMs: 100 })
 * // { ok: false, reason: 'refuses tag "nsfw"' }
 * const signed = signCovenant(key, config, nextCovenantVersion(previous, config))
 * verifySignedCovenant(signed)                       // throws unless signed by signed.peer
 * closestPeers(cid.bytes, peerIds, 3)                // the same 3 peers for everyone
 * parseAmount('0.000001 cr')                         // 1000: money is whole nano-credits
 * ```
 */
export type { CovenantConfig, CovenantConfigInput, CovenantIssue } from './covenant-config.ts'
export {
  CovenantConfigSchema,
  covenantToYaml,
  DEFAULT_COVENANT,
  DEFAULT_MAX_FUEL,
  formatByteSize,
  loadCovenantFile,
  MAX_PRICES,
  MAX_STORE_BYTES,
  parseByteSize,
  parseCovenantYaml,
} from './covenant-config.ts'
export type { Decision, ExecuteQuery, StoreQuery } from './matching.ts'
export { assertAllowed, mayExecute, mayServe, mayStore } from './matching.ts'
export { amountSchema, formatAmount, MAX_AMOUNT, NCR_PER_CREDIT, parseAmount } from './money.ts'
export { closestPeers, compareDistance, peerPosition, xorDistance } from './peer-selection.ts'
export type { SignedCovenant, SignedCovenantJSON } from './signed-covenant.ts'
export {
  decodeSignedCovenant,
  encodeSignedCovenant,
  MAX_SIGNED_COVENANT_BYTES,
  nextCovenantVersion,
  SignedCovenantJSONSchema,
  SignedCovenantSchema,
  signCovenant,
  signedCovenantFromJSON,
  signedCovenantToJSON,
  verifySignedCovenant,
} from './signed-covenant.ts'
