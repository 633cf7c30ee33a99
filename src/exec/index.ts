/**
 * The invocation protocol: signed requests, deterministic executor selection, execution under a
 * node's covenant, signed receipts, quorum certificates and conflict evidence.
 *
 * Network-free: every function takes what it needs (a key, a sandbox, a way to fetch a block, a
 * way to send a request to a peer), so the node wires it to libp2p and tests wire it to
 * in-process executors. `verifyCertificate` and `verifyConflict` need no clock and no network.
 *
 * @example
 * ```ts
 * // an executor, on a node
 * const executor = createExecutor({ key, sandbox, getBlock, covenant: () => myCovenant })
 * // a caller
 * const { request, id } = createRequest(callerKey, { fn: manifestCid, export: 'add', args: [1, 2] })
 * const { value, certificate, conflicts } = await invoke({
 *   request, id, manifest, candidates,
 *   send: (peer, request, { signal }) => rpc(peer, EXEC_PROTOCOL, { request }, signal),
 * })
 * verifyCertificate(certificate, { output: { value, logs: [], error: null } }) // anyone, anywhere
 * ```
 */
export type {
  Certificate,
  Conflict,
  VerifiedCertificate,
  VerifyCertificateOptions,
} from './certificate.ts'
export { CertificateSchema, ConflictSchema, verifyCertificate, verifyConflict } from './certificate.ts'
export type { CacheStats } from './code-cache.ts'
export { createManifestCache } from './code-cache.ts'
export type { ExecuteOptions, Executor, ExecutorInit, ExecutorStats, FaultKind } from './executor.ts'
export { createExecutor, FAULT_KINDS, FORGED_VALUE } from './executor.ts'
export type {
  SelectExecutorsInit,
  Selection,
  SelectionCandidate,
  SelectionLimits,
} from './executor-selection.ts'
export { selectExecutors } from './executor-selection.ts'
export { MAX_JSON_BYTES } from './fields.ts'
export type { Attempt, InvokeInit, InvokeResult, SendExec } from './invoke.ts'
export { invoke } from './invoke.ts'
export type { AttemptOutcome, CertificateJSON, ConflictJSON, ReceiptJSON, SignedRequestJSON } from './json.ts'
export {
  ATTEMPT_OUTCOMES,
  AttemptSchema,
  CertificateJSONSchema,
  ConflictJSONSchema,
  certificateFromJSON,
  certificateToJSON,
  conflictFromJSON,
  conflictToJSON,
  ReceiptJSONSchema,
  receiptToJSON,
  requestFromJSON,
  requestToJSON,
  SignedRequestJSONSchema,
} from './json.ts'
export type { Output, OutputError, OutputLike } from './output.ts'
export { canonicalOutput, OutputSchema, outputHash } from './output.ts'
export type { Receipt, ReceiptBody, ReceiptInit } from './receipt.ts'
export { ReceiptSchema, signReceipt, verifyReceipt } from './receipt.ts'
export type { ExecRequestInit, RequestBody, SignedRequest } from './request.ts'
export {
  checkRequest,
  createRequest,
  DEFAULT_QUORUM,
  DEFAULT_REPLICAS,
  DEFAULT_REQUEST_LIMITS,
  MAX_CLOCK_SKEW_MS,
  MAX_DEADLINE_AHEAD_MS,
  MAX_FUEL,
  MAX_MEMORY_MIB,
  MAX_REPLICAS,
  MAX_TIMEOUT_MS,
  MIN_MEMORY_MIB,
  MIN_TIMEOUT_MS,
  RequestBodySchema,
  requestId,
  requestLimits,
  SignedRequestSchema,
  verifyRequest,
} from './request.ts'
export type { ConflictMessage, ExecReply, ExecRequestMessage } from './wire.ts'
export {
  CONFLICT_PROTOCOL,
  ConflictMessageSchema,
  EXEC_PROTOCOL,
  ExecReplySchema,
  ExecRequestMessageSchema,
  MAX_CONFLICT_BYTES,
  MAX_EXEC_REPLY_BYTES,
  MAX_EXEC_REQUEST_BYTES,
} from './wire.ts'
