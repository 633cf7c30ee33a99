/**
 * The HTTP API as data: every route's method, path and the zod schemas of its params, query, body
 * and reply. The node serves each route by handing it to `route()` with a handler, which parses
 * every input with these schemas; the client builds its requests from the same specs and parses
 * every reply with them, so a node and a client cannot drift apart unnoticed. No `node:` imports:
 * the client runs in a browser.
 *
 * Every error, on every route, is `{ "error": { code, message, details? } }` ({@link ErrorBodySchema})
 * with the HTTP status of its code in `ERROR_CODES`.
 *
 * A part that serves HTTP adds a file here (`<part>-routes.ts`) with its specs, lists them in
 * {@link API_ROUTES}, and its node service binds a handler to each (docs/architecture.md).
 *
 * @example
 * ```ts
 * const res = await fetch(base + routePath(getFunctionRoute, { cid }))
 * const info = FunctionInfoSchema.parse(await res.json())   // the client does this, typed
 * ```
 */
import { z } from 'zod'
import { ErrorJSONSchema } from '../errors/index.ts'
import {
  blockHoldersRoute,
  deployRoute,
  getBlockRoute,
  getFunctionRoute,
  inspectRoute,
  putBlockRoute,
  storageRoute,
} from './block-routes.ts'
import { callsRoute, conflictsRoute, invokeRoute } from './exec-routes.ts'
import {
  cancelJobRoute,
  enqueueJobRoute,
  enqueueRunRoute,
  jobEventsRoute,
  jobRoute,
  listJobsRoute,
} from './job-routes.ts'
import { healthRoute, metricsRoute, nodeRoute, peersRoute } from './node-routes.ts'
import { accountRoute, accountsRoute, owedRoute, payRoute, quoteRoute } from './payment-routes.ts'
import type { RouteSpec } from './route.ts'
import {
  commitRoute,
  createStoreRoute,
  getKeyRoute,
  historyRoute,
  keyHistoryRoute,
  listKeysRoute,
  revocationsRoute,
  revokeRoute,
  storeInfoRoute,
} from './store-routes.ts'

export type {
  DeployBody,
  DeployReply,
  FunctionInfo,
  InspectReply,
  PutBlockReply,
  StorageReply,
} from './block-routes.ts'
export {
  BLOCK_SOURCE_HEADER,
  BLOCK_TAGS_HEADER,
  blockHoldersRoute,
  CidParamsSchema,
  DeployBodySchema,
  DeployReplySchema,
  deployRoute,
  FunctionInfoSchema,
  getBlockRoute,
  getFunctionRoute,
  HeldWhySchema,
  HoldersReplySchema,
  InspectBodySchema,
  InspectReplySchema,
  inspectRoute,
  PutBlockQuerySchema,
  PutBlockReplySchema,
  putBlockRoute,
  StorageQuerySchema,
  StorageReplySchema,
  storageRoute,
} from './block-routes.ts'
export type { CallEvent, CommitOutcome, InvokeReply } from './exec-routes.ts'
export {
  CallEventSchema,
  CallsQuerySchema,
  CommitOutcomeSchema,
  ConflictsQuerySchema,
  ConflictsReplySchema,
  callsRoute,
  conflictsRoute,
  InvokeBodySchema,
  InvokeReplySchema,
  invokeRoute,
} from './exec-routes.ts'
export type { EnqueueJobReply, EnqueueRunReply, JobInfo, JobSummary, ListJobsReply } from './job-routes.ts'
export {
  CancelJobBodySchema,
  cancelJobRoute,
  EnqueueJobBodySchema,
  EnqueueJobReplySchema,
  EnqueueRunBodySchema,
  EnqueueRunReplySchema,
  enqueueJobRoute,
  enqueueRunRoute,
  JobAttemptSchema,
  JobInfoSchema,
  JobParamsSchema,
  JobSummarySchema,
  jobEventsRoute,
  jobRoute,
  ListJobsQuerySchema,
  ListJobsReplySchema,
  listJobsRoute,
} from './job-routes.ts'
export type { NodeInfo, PeerInfo } from './node-routes.ts'
export {
  HealthReplySchema,
  healthRoute,
  metricsRoute,
  NodeInfoSchema,
  nodeRoute,
  PeerInfoSchema,
  PeersReplySchema,
  peersRoute,
} from './node-routes.ts'
export {
  AccountParamsSchema,
  AccountQuerySchema,
  AccountReplySchema,
  AccountsQuerySchema,
  AccountsReplySchema,
  accountRoute,
  accountsRoute,
  OwedReplySchema,
  owedRoute,
  PayBodySchema,
  PayResultsSchema,
  payRoute,
  QuoteBodySchema,
  QuoteReplySchema,
  quoteRoute,
} from './payment-routes.ts'
export type { RouteInput, RouteReply, RouteSpec } from './route.ts'
export { DEFAULT_BODY_LIMIT, routePath } from './route.ts'
export type {
  CreateStoreReply,
  DescriptorJSON,
  GetKeyReply,
  ListKeysReply,
  StoreHistoryReply,
  StoreInfo,
  StoreKeyHistoryReply,
} from './store-routes.ts'
export {
  CommitBodySchema,
  CommitReplySchema,
  CreateStoreBodySchema,
  CreateStoreReplySchema,
  commitRoute,
  createStoreRoute,
  DescriptorJSONSchema,
  GetKeyQuerySchema,
  GetKeyReplySchema,
  getKeyRoute,
  HistoryQuerySchema,
  historyRoute,
  KeyHistoryQuerySchema,
  keyHistoryRoute,
  ListKeysQuerySchema,
  ListKeysReplySchema,
  listKeysRoute,
  RevocationsQuerySchema,
  RevokeBodySchema,
  revocationsRoute,
  revokeRoute,
  StoreHistoryReplySchema,
  StoreInfoSchema,
  StoreKeyHistoryReplySchema,
  StoreKeyParamsSchema,
  StoreParamsSchema,
  StoreRevocationsReplySchema,
  storeInfoRoute,
} from './store-routes.ts'

/** The body of every error reply. */
export const ErrorBodySchema = z.object({ error: ErrorJSONSchema })

/** Every route of the API; a node serves each of them. */
export const API_ROUTES: readonly RouteSpec[] = [
  healthRoute,
  nodeRoute,
  peersRoute,
  metricsRoute,
  putBlockRoute,
  getBlockRoute,
  blockHoldersRoute,
  deployRoute,
  getFunctionRoute,
  inspectRoute,
  storageRoute,
  invokeRoute,
  conflictsRoute,
  callsRoute,
  // datastores (store-routes.ts)
  createStoreRoute,
  storeInfoRoute,
  getKeyRoute,
  listKeysRoute,
  historyRoute,
  keyHistoryRoute,
  commitRoute,
  revokeRoute,
  revocationsRoute,
  // payments (payment-routes.ts)
  payRoute,
  quoteRoute,
  accountsRoute,
  accountRoute,
  owedRoute,
  // jobs (job-routes.ts)
  enqueueJobRoute,
  enqueueRunRoute,
  listJobsRoute,
  jobRoute,
  jobEventsRoute,
  cancelJobRoute,
]
