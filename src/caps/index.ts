/**
 * Capabilities: who may write which keys of a datastore namespace, as UCAN delegation chains
 * (UCAN 0.9 in DAG-CBOR, through `@ipld/dag-ucan`).
 *
 * The namespace's owner delegates `store/write` on a key prefix to a key or to a function (named
 * by its manifest CID, so a changed function has no right), with an expiry; a delegate that is a
 * key may re-delegate a narrower right. A key writes by signing a write invocation; a function's
 * writes are certified by the executors' receipts instead, and need only the grant. An issuer in a
 * chain may revoke any delegation at or below its own.
 *
 * Everything here is synchronous to check, needs no clock of its own (the time is an input) and
 * no network, and loads in a browser. Each refusal has its own error code: GRANT_MALFORMED,
 * GRANT_FORGED, GRANT_EXPIRED, GRANT_NOT_YET_VALID, GRANT_WIDENED, GRANT_REVOKED,
 * GRANT_WRONG_AUDIENCE, GRANT_BROKEN_CHAIN, GRANT_MISSING, INVOCATION_OUTSIDE_WINDOW,
 * REVOCATION_REFUSED (and INVOCATION_REPLAYED, which the datastore raises).
 *
 * @example
 * ```ts
 * // the owner lets a function write keys under "posts/" for a year
 * const grant = await delegateWrite({
 *   issuer: ownerKey, audience: { fn: manifestCid }, namespace, prefix: 'posts/',
 *   expiresAt: Date.now() + 365 * 86_400_000,
 * })
 * // a holder checks a write of "posts/1" by that function
 * authorizeWrite({
 *   grants: [grant.chain], namespace, owner: keyId(ownerKey), writer: { fn: manifestCid },
 *   keys: ['posts/1'], now: Date.now(), isRevoked: (cid, at) => false,
 * })
 * // and the owner takes it back
 * const revocation = await revoke({ issuer: ownerKey, namespace, grant })
 * verifyRevocation(revocation, { namespace, owner: keyId(ownerKey) }).revoked === grant.cid
 * ```
 */
export type {
  AuthorizeWriteInit,
  ChainContext,
  DelegateWriteInit,
  Delegation,
  GrantChain,
  IsRevoked,
  VerifiedGrant,
  VerifyGrantContext,
  WriteGrant,
  WriteGrantJSON,
} from './grant.ts'
export {
  authorizeWrite,
  BytesSchema,
  checkChain,
  delegateWrite,
  GrantChainSchema,
  grantFromJSON,
  grantToJSON,
  KeyPrefixSchema,
  MAX_CHAIN_LENGTH,
  MAX_GRANTS,
  MAX_KEY_BYTES,
  STORE_WRITE,
  verifyGrant,
  WriteGrantJSONSchema,
  WriteGrantSchema,
} from './grant.ts'
export type { InvokeWriteInit, VerifiedInvocation, WriteInvocation } from './invocation.ts'
export {
  DEFAULT_INVOCATION_WINDOW_MS,
  invokeWrite,
  MAX_INVOCATION_SKEW_MS,
  MAX_INVOCATION_WINDOW_MS,
  verifyWriteInvocation,
} from './invocation.ts'
export type { Writer } from './principals.ts'
export {
  CanonicalCidSchema,
  functionDid,
  isCanonicalCid,
  keyDid,
  keyIdOfDid,
  namespaceDid,
  namespaceResource,
  WriterSchema,
  writerDid,
  writerOfDid,
} from './principals.ts'
export type { Revocation, RevokeInit, VerifiedRevocation } from './revocation.ts'
export { RevocationSchema, revoke, UCAN_REVOKE, verifyRevocation } from './revocation.ts'
export { MAX_UCAN_BYTES } from './ucan.ts'
