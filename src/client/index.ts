/**
 * The Covenant SDK: talks to a gateway node over its HTTP API with global fetch, and checks what
 * it gets (block hashes, covenant signatures, quorum certificates) itself, certificates against a
 * view of the network it builds from several nodes (or from covenants it pins). Works in a browser
 * bundle too (docs/calling.md, "In a browser"): there the devnet lookup, the caller-key file and
 * export detection, which need Node, are swapped (package.json `browser` field) for versions that
 * ask for `nodes`, `key` and `exports` instead; make a key there with {@link generateKey}.
 *
 * The gateway is `opts.node`, else the first of `opts.nodes`, else `$COVENANT_NODE`, else the first
 * node of the nearest `.covenant/devnet/devnet.json` (from the cwd up to the repo root), else
 * NODE_UNREACHABLE. The view is built from `opts.nodes`, else every node of that devnet, else the
 * gateway alone (trusting it for who the executors are); `opts.covenants` pins it instead.
 *
 * @example
 * ```ts
 * const client = await connect()                       // the local devnet: its view from every node
 * const { cid, holders } = await client.putBlock(new TextEncoder().encode('hi'))
 * const bytes = await client.getBlock(cid)             // hash checked here
 * const fn = await client.deploy(await readFile('dist/fn.js', 'utf8'), { tags: ['demo'], name: 'fn' })
 * console.log(fn.cid, fn.holders)
 * const { value, certificate } = await client.invoke(fn.cid, 'fn', [1, 2], { replicas: 3, quorum: 2 })
 * await client.verify(certificate)                     // already done by invoke; anyone can redo it
 *
 * // a datastore: write two keys at once, only if `count` is still at the version read
 * const { ns } = await client.createStore('guestbook', { public: true })
 * const seen = await client.store(ns).get('count')
 * await client.store(ns).commit([{ key: 'count', value: 1 }, { key: 'entries/0', value: 'hi' }],
 *   { reads: [{ key: 'count', version: seen.version }] })
 *
 * // in a browser: the view from three nodes, the first the gateway
 * const net = await connect({ nodes: ['http://127.0.0.1:4701', 'http://127.0.0.1:4703', 'http://127.0.0.1:4705'] })
 * const { value } = await net.invoke(fnCid, 'greet', ['Ada'], { key: await generateKey() })
 * ```
 */

import type { SignedCovenant } from '../covenant/index.ts'
import type { TrustInput } from '../exec/index.ts'
import { CovenantClient } from './client.ts'
import { findDevnetNodes } from './node-helpers.ts'
import type { PaymentsOptions } from './payments.ts'

export type { JobSummary } from '../api/index.ts'
export type { Revocation, WriteGrant, WriteGrantJSON } from '../caps/index.ts'
export { grantFromJSON, grantToJSON } from '../caps/index.ts'
export type { Read, Vouch, Write, WritePolicyInput } from '../datastore/index.ts'
export { createFunctionCommit, namespaceId } from '../datastore/index.ts'
export type {
  Attempt,
  Certificate,
  CertificateJSON,
  Conflict,
  ConflictJSON,
  Ticket,
  TrustInput,
  VerifiedCertificate,
  VerifyCertificateOptions,
  View,
} from '../exec/index.ts'
export {
  certificateFromJSON,
  certificateToJSON,
  conflictFromJSON,
  conflictToJSON,
  createView,
  DEFAULT_TRUST,
  LIMIT_TIERS,
  verifyCertificate,
  verifyConflict,
} from '../exec/index.ts'
export type { JobStatus } from '../jobs/index.ts'
export type { PrivateKey } from '../keys/index.ts'
export { decodeKey, encodeKey, generateKey, keyId } from '../keys/index.ts'
export type {
  CallEvent,
  ClientOptions,
  CommitOutcome,
  DeployOptions,
  DeployResult,
  DeploySource,
  FunctionInfo,
  InspectReply,
  InvokeOptions,
  InvokeResult,
  NodeInfo,
  PeerInfo,
  PutBlockResult,
  QuoteResult,
  StorageReply,
} from './client.ts'
export { CovenantClient } from './client.ts'
export type { EnqueueOptions, JobInfo, JobOutcome } from './jobs.ts'
export { JobHandle } from './jobs.ts'
export { viewFromPeerLists } from './network-view.ts'
export {
  defaultKeyPath,
  findDevnetNodes,
  loadCallerKey,
  loadCallerTicket,
  openCallerLedger,
} from './node-helpers.ts'
export type {
  Balance,
  CallerPayments,
  FaucetResult,
  PaymentProblem,
  PaymentsOptions,
  SettleReport,
} from './payments.ts'
export type { CommitOptions, CommitResult, CreatedStore, CreateStoreOptions } from './store.ts'
export { NamespaceHandle } from './store.ts'

export interface ConnectOptions {
  /** the gateway's HTTP API URL */
  node?: string
  /** the nodes whose peer lists make the view; the first is the gateway unless `node` is given */
  nodes?: string[]
  /** covenants the caller pins as its view; no node is asked who the executors are */
  covenants?: SignedCovenant[]
  /** directory holding devnet.json @default found from the cwd */
  devnetDir?: string
  /** per-request timeout @default 60000 */
  timeoutMs?: number
  /** what certificates must meet: `{ minQuorum, maxUnprovenSkips, minEligibleFraction }` (TrustSchema) */
  trust?: TrustInput
  /** a view older than this is rebuilt in the background @default 30000 */
  viewTtlMs?: number
  /** Node only: call the executors over libp2p from this process (see `ClientOptions.direct`) @default false */
  direct?: boolean
  /** send each call to a node of the view's sources that executes it (see `ClientOptions.executingGateway`) @default false */
  executingGateway?: boolean
  /** how the caller pays (see docs/payments.md); `false` keeps no ledger @default on */
  payments?: PaymentsOptions | false
}

/** A client for a gateway, with its view's sources; see the module comment for the defaults. */
export async function connect(opts: ConnectOptions = {}): Promise<CovenantClient> {
  const env = typeof process === 'undefined' ? undefined : process.env.COVENANT_NODE
  let gateway = opts.node ?? opts.nodes?.[0] ?? (opts.devnetDir === undefined ? env : undefined)
  let viewFrom = opts.nodes
  if (gateway === undefined || (opts.devnetDir !== undefined && viewFrom === undefined)) {
    const devnet = await findDevnetNodes(opts.devnetDir)
    gateway ??= devnet[0]
    viewFrom ??= devnet
  }
  return new CovenantClient(gateway, {
    timeoutMs: opts.timeoutMs,
    viewFrom: viewFrom ?? [gateway],
    covenants: opts.covenants,
    trust: opts.trust,
    viewTtlMs: opts.viewTtlMs,
    direct: opts.direct,
    executingGateway: opts.executingGateway,
    payments: opts.payments,
  })
}
