/**
 * The node: composes the parts into a daemon and serves the HTTP API. {@link createNode} runs the
 * node key, its signed covenant, the network (`net`), the block and conflict stores, the peer table
 * (`peers`), block storage (`storage`), the HTTP server with one error handler, pino logs
 * (`<data>/node.log`) and Prometheus metrics, and the services built on them:
 * - status: `GET /health`, `/v1/node`, `/v1/peers`, `/metrics`;
 * - blocks: `PUT /v1/blocks`, `GET /v1/blocks/:cid[/holders]`, `POST /v1/functions`, `GET /v1/functions/:cid`;
 * - exec: the executor on `/covenant/exec/1.0.0`, the gateway `POST /v1/invoke`, conflict evidence
 *   on `/covenant/conflict/1.0.0` and `GET /v1/conflicts`;
 * - datastore: the namespaces this node holds (`<data>/datastore.db`), replicated over
 *   `/covenant/store/1.0.0`, and `/v1/stores…` (docs/apps.md);
 * - jobs: the jobs this node keeps (`<data>/jobs.db`), their dispatch through this node's gateway,
 *   `/covenant/jobs/1.0.0` between keepers, and `/v1/jobs…` (docs/jobs.md).
 *
 * A part plugs in as a service ({@link NodeServiceFactory}, see `service.ts` and
 * docs/architecture.md): a factory over the components it names that registers its protocols,
 * routes (with their specs from `src/api`) and metrics, and returns `{ name, start?, stop? }`.
 * {@link runDaemon} runs a node as a process (what `covenant node start` and a devnet's nodes run).
 *
 * @example
 * ```ts
 * const node = await createNode({
 *   dataDir: 'data/node-1',
 *   covenant: await loadCovenantFile('covenant.yaml'),
 *   bootstrap: ['/ip4/127.0.0.1/tcp/4700/p2p/12D3Koo…'],
 *   services: [(c: Pick<NodeComponents, 'net'>) => ({ name: 'hello', start: async () => console.log(c.net.peerId) })],
 * })
 * console.log(node.url, node.multiaddrs())
 * await node.stop()
 * ```
 */
export type { DaemonOptions, ReadyLine } from './daemon.ts'
export { DAEMON_ENTRY, daemonOptionsSchema, readyLineSchema, runDaemon } from './daemon.ts'
export type { FastifyReply, HttpServer } from './http.ts'
export { route } from './http.ts'
export type { NodeMetrics } from './metrics.ts'
export type { CovenantNode, NodeInit, NodeOptions } from './node.ts'
export { createNode, nodeOptionsSchema } from './node.ts'
export type { Gateway, NodeComponents, NodeService, NodeServiceFactory } from './service.ts'
export type { ConflictStore, ConflictStoreInit, StoredConflict } from './services/conflict-store.ts'
export { openConflictStore } from './services/conflict-store.ts'
export type { DatastoreServiceOptions, StoreFaultKind } from './services/datastore.ts'
export { DATASTORE_FILE, STORE_FAULT_KINDS } from './services/datastore.ts'
export type { ExecServiceOptions } from './services/exec.ts'
export type { JobsServiceOptions } from './services/jobs.ts'
export { JOBS_FAULT_KINDS, JOBS_FILE, JOBS_SCAN_INTERVAL_MS, verifyRunWithView } from './services/jobs.ts'
export type { NodeLedger, PaymentsOptions } from './services/payments.ts'
export { PAY_FAULT_KINDS, paymentsOptionsSchema } from './services/payments.ts'
export { loadOrSignCovenant, SIGNED_COVENANT_FILE } from './signed-covenant-file.ts'
