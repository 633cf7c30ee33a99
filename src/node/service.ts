/**
 * The service contract: how a part plugs into the node. A service is made by a factory that
 * receives the components it declares (a `Pick` of {@link NodeComponents}, so a test can hand it
 * only those), registers what it serves, and returns `{ name, start?, stop? }`:
 * - protocols: `net.handle(PROTOCOL, { schema, maxBytes, handler })`, calls with `net.request`;
 * - HTTP routes: `route(http, spec, handler)` (`./http.ts`) with the route's spec from `src/api`;
 * - metrics: counters and gauges created in `metrics.registry`;
 * - logs: `logger` (never request arguments, block contents or results).
 * The factory runs once the network, stores, peer table and storage exist and before the HTTP
 * server listens; `start` runs once the node is up, `stop` in reverse order before the parts stop.
 */
import type { Logger } from 'pino'
import type { EnqueueRunReply } from '../api/index.ts'
import type { BlockStore, CID, Manifest } from '../content/index.ts'
import type { SignedCovenant } from '../covenant/index.ts'
import type { Certificate, InvokeResult, Output, SignedRequest, TrustInput, View } from '../exec/index.ts'
import type { PrivateKey } from '../keys/index.ts'
import type { Net } from '../net/index.ts'
import type { PeerTable } from '../peers/index.ts'
import type { Storage } from '../storage/index.ts'
import type { CallFeed } from './call-feed.ts'
import type { HttpServer } from './http.ts'
import type { NodeMetrics } from './metrics.ts'
import type { ConflictStore } from './services/conflict-store.ts'
import type { NodeLedger } from './services/payments.ts'
import type { NodeStores } from './stores.ts'

/** Everything the node offers its services; each service takes only the part it needs. */
export interface NodeComponents {
  key: PrivateKey
  peerId: string
  dataDir: string
  /** the node's current signed covenant */
  covenant(): SignedCovenant
  net: Net
  /** live peers with their verified covenants */
  peers: PeerTable
  blockStore: BlockStore
  storage: Storage
  /** fetches a block from here or the network, checked against its CID */
  getBlock(cid: CID): Promise<Uint8Array>
  /** a function's manifest by its CID string, fetched, checked and decoded once (cached) */
  manifest(fn: string): Promise<Manifest>
  /**
   * the network as this node sees it: its own covenant and its live peers' verified covenants.
   * Its executor, its gateway and its conflict store judge selection and certificates against it.
   */
  view(): View
  /** add routes with `route(http, spec, handler)`; it listens after every service was created */
  http: HttpServer
  logger: Logger
  metrics: NodeMetrics
  /** verified conflict evidence, `<data>/conflicts.db` */
  conflicts: ConflictStore
  /** the calls this node executed or gatewayed, without their arguments or outputs (the exec service reports them) */
  calls: CallFeed
  /** the quorum protocol run as a gateway, for services that invoke (jobs); the exec service provides it */
  gateway: Gateway
  /** the network's datastores, served by the datastore service: reads at a version, commits */
  stores: NodeStores
  /** devnet fault injection kind, for the exec service */
  fault?: string
  /** this node's payee ledger, `<data>/ledger.db`; undefined when its payments are off */
  ledger?: NodeLedger
}

/**
 * The gateway as other services use it: what `POST /v1/invoke` runs for a signed request (counted,
 * logged, in the calls feed), without HTTP. NOT_STARTED until the exec service provides it.
 */
export interface Gateway {
  invoke(request: SignedRequest, options?: { trust?: TrustInput }): Promise<InvokeResult>
  /** the exec service hands its gateway over here when it is created */
  provide(invoke: Gateway['invoke']): void
  /**
   * Hands the jobs a certified run enqueued (`ctx.enqueue`) to their keepers, as
   * `POST /v1/jobs/enqueued` does: the gateway calls it once the run's writes are committed.
   * NOT_STARTED until the jobs service provides it.
   */
  enqueue(run: { certificate: Certificate; output: Output }): Promise<EnqueueRunReply['jobs']>
  /** the jobs service hands its side over here when it is created */
  provideJobs(enqueue: Gateway['enqueue']): void
}

/** A service composed into the node. `start` runs after the HTTP server listens; `stop` in reverse order. */
export interface NodeService {
  name: string
  start?(): Promise<void>
  stop?(): Promise<void>
}

/** Makes a service from the components it needs. */
export type NodeServiceFactory<C extends Partial<NodeComponents> = NodeComponents> = (
  components: C,
) => NodeService | Promise<NodeService>
