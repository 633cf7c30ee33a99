/**
 * The invocation protocol: signed requests with their tickets, deterministic executor selection
 * over a view of the network, execution under a node's covenant, signed receipts and refusals,
 * quorum certificates bound to the selection, and conflict evidence.
 *
 * Network-free: every function takes what it needs (a key, a sandbox, a way to fetch a block, a
 * way to send a request to a peer, a view), so the node wires it to libp2p and tests wire it to
 * in-process executors. `verifyCertificate` and `verifyConflict` need no clock and no network.
 *
 * @example
 * ```ts
 * // a view of the network: signed covenants the verifier trusts (see docs/calling.md)
 * const view = createView(covenants)
 * // an executor, on a node
 * const executor = createExecutor({ key, sandbox, getBlock, covenant: () => mine, view: () => view })
 * // a caller (its ticket for this hour is minted on first use)
 * const { request, id } = createRequest(callerKey, { fn: manifestCid, export: 'add', args: [1, 2] })
 * const { value, output, certificate } = await invoke({
 *   request, id, manifest, view,
 *   send: (peer, request, { signal }) => rpc(peer, EXEC_PROTOCOL, { request }, signal),
 * })
 * verifyCertificate(certificate, { view, manifest, output }) // anyone holding a view, anywhere
 * ```
 */
export type {
  Certificate,
  Conflict,
  SkipEvidence,
  Skipped,
  Trust,
  TrustInput,
  VerifiedCertificate,
  VerifyCertificateOptions,
} from './certificate.ts'
export {
  CertificateSchema,
  ConflictSchema,
  DEFAULT_TRUST,
  evidenceFunctions,
  MAX_SKIPPED,
  PlainCertificateSchema,
  SkipEvidenceSchema,
  SkippedSchema,
  skipEvidence,
  TrustSchema,
  trustOf,
  verifyCertificate,
  verifyCertificateSignatures,
  verifyConflict,
} from './certificate.ts'
export type { CacheStats } from './code-cache.ts'
export { createManifestCache } from './code-cache.ts'
export type { ExecuteOptions, Executor, ExecutorInit, ExecutorStats, FaultKind, ReadAt } from './executor.ts'
export { createExecutor, FAULT_KINDS, FORGED_VALUE } from './executor.ts'
export type { Ranking, Selection, SelectionManifest, SelectionRequest } from './executor-selection.ts'
export { rankExecutors, selectExecutors, selectionKey, thinRanking } from './executor-selection.ts'
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
export type { WatchLateOptions } from './late-receipts.ts'
export { LATE_REPLY_GRACE_MS, replyWindowMs, watchLateReceipts } from './late-receipts.ts'
export type { Output, OutputError, OutputLike } from './output.ts'
export { canonicalOutput, OutputSchema, outputEffects, outputHash, outputValue } from './output.ts'
export type { Receipt, ReceiptBody, ReceiptInit } from './receipt.ts'
export { ReceiptSchema, signReceipt, verifyReceipt } from './receipt.ts'
export type { Refusal } from './refusal.ts'
export { RefusalSchema, STANDING_REFUSALS, signRefusal, verifyRefusal } from './refusal.ts'
export type { ExecRequestInit, RequestBody, SignedRequest, StoreReads } from './request.ts'
export {
  checkRequest,
  checkRequestTime,
  createRequest,
  DEFAULT_QUORUM,
  DEFAULT_REPLICAS,
  DEFAULT_REQUEST_LIMITS,
  LIMIT_TIERS,
  MAX_CLOCK_SKEW_MS,
  MAX_DEADLINE_AHEAD_MS,
  MAX_REPLICAS,
  MAX_STORE_READS,
  RequestBodySchema,
  requestId,
  requestLimits,
  SignedRequestSchema,
  StoreReadsSchema,
  verifyRequest,
} from './request.ts'
export type { OutputBlock, OutputRef } from './stored-output.ts'
export {
  INLINE_OUTPUT_BYTES,
  isStored,
  MAX_OUTPUT_MIB,
  OUTPUT_CHUNK_BYTES,
  OutputRefSchema,
  readStoredOutput,
  storedOutput,
} from './stored-output.ts'
export type { Ticket } from './ticket.ts'
export {
  checkTicket,
  epochOf,
  mintTicket,
  TICKET_BITS,
  TICKET_EPOCH_MS,
  TicketSchema,
  ticketFor,
  ticketHash,
  ticketServes,
} from './ticket.ts'
export type { View, ViewOptions, ViewPeer } from './view.ts'
export { createView, verifiedCovenant } from './view.ts'
export type { ConflictMessage, ExecReply, ExecRequestMessage, ExecResult } from './wire.ts'
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
