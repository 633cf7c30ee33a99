/**
 * `createNode`: composes the parts into a running node — key, signed covenant, network, block and
 * conflict stores, peer table, storage, the HTTP server and the services — and stops them in
 * reverse order.
 */
import { mkdir } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import pino from 'pino'
import { z } from 'zod'
import { type CID, openBlockStore, parseCid } from '../content/index.ts'
import {
  type CovenantConfig,
  CovenantConfigSchema,
  DEFAULT_COVENANT,
  type SignedCovenant,
} from '../covenant/index.ts'
import { CovenantError } from '../errors/index.ts'
import { createManifestCache, createView, type View } from '../exec/index.ts'
import { keyId, loadOrCreateKey } from '../keys/index.ts'
import { createNet } from '../net/index.ts'
import { createPeerTable, peerTableOptionsSchema } from '../peers/index.ts'
import { createStorage, storageOptionsSchema } from '../storage/index.ts'
import { createCallFeed } from './call-feed.ts'
import { createHttpServer } from './http.ts'
import { createMetrics } from './metrics.ts'
import type { Gateway, NodeComponents, NodeService, NodeServiceFactory } from './service.ts'
import { blocksService } from './services/blocks.ts'
import { openConflictStore } from './services/conflict-store.ts'
import { dashboardService } from './services/dashboard.ts'
import { type DatastoreServiceOptions, datastoreService } from './services/datastore.ts'
import { type ExecServiceOptions, execService } from './services/exec.ts'
import { type JobsServiceOptions, jobsService } from './services/jobs.ts'
import { openNodeLedger, paymentsOptionsSchema, paymentsService } from './services/payments.ts'
import { statusService } from './services/status.ts'
import { loadOrSignCovenant } from './signed-covenant-file.ts'
import { createNodeStores } from './stores.ts'

/** Options of a node; defaults are written once, here and in the schemas of the parts it runs. */
export const nodeOptionsSchema = z.strictObject({
  /** data directory: node.key, covenant.cbor, blocks.db, conflicts.db, datastore.db, jobs.db, ledger.db, payer.db, node.log */
  dataDir: z.string().min(1),
  /** libp2p listen addresses @default ['/ip4/127.0.0.1/tcp/0'] */
  listen: z.array(z.string()).default(['/ip4/127.0.0.1/tcp/0']),
  /** peers to join through, each ending in /p2p/<id> @default [] */
  bootstrap: z.array(z.string()).default([]),
  /** HTTP API host; loopback unless the operator opens it @default '127.0.0.1' */
  httpHost: z.string().default('127.0.0.1'),
  /** HTTP API port; 0 picks a free one @default 0 */
  httpPort: z.number().int().min(0).max(65535).default(0),
  /** holders per block (k), repair loop period: see `storageOptionsSchema` */
  ...storageOptionsSchema.pick({ replicas: true, repairIntervalMs: true }).shape,
  /** hello period and timeout: see `peerTableOptionsSchema` */
  ...peerTableOptionsSchema.pick({ heartbeatMs: true, helloTimeoutMs: true }).shape,
  /** pino level @default 'info' */
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** also log to stderr (besides <data>/node.log) @default false */
  logToStderr: z.boolean().default(false),
  /** collect Node's default process metrics @default true */
  defaultMetrics: z.boolean().default(true),
  /** devnet fault injection kind, handed to services; refused (FAULT_REFUSED) unless `devnet` */
  fault: z.string().max(64).optional(),
  /** this node runs in a local devnet: the only place `fault` is allowed @default false */
  devnet: z.boolean().default(false),
  /** its ledger: on or off, the storage day, the billing period (see `paymentsOptionsSchema`) */
  payments: paymentsOptionsSchema.prefault({}),
  /**
   * browser apps built ahead that this node serves, each under `/apps/<name>/`: name → the folder
   * of its built files (`index.html` and its hashed assets), e.g. examples/guestbook/dist @default {}
   */
  apps: z
    .record(
      z.string().regex(/^[a-z0-9][a-z0-9-]{0,31}$/, 'an app name is 1–32 of a-z, 0-9 and -'),
      z.string().min(1),
    )
    .default({}),
})
export type NodeOptions = z.input<typeof nodeOptionsSchema>

export interface NodeInit extends NodeOptions {
  /** the operator's covenant @default DEFAULT_COVENANT */
  covenant?: CovenantConfig
  /** extra services composed after the built-in ones, in order */
  services?: NodeServiceFactory[]
  /** options of the built-in exec service */
  exec?: ExecServiceOptions
  /** options of the built-in datastore service */
  datastore?: DatastoreServiceOptions
  /** options of the built-in jobs service */
  jobs?: JobsServiceOptions
}

export interface CovenantNode {
  readonly peerId: string
  readonly components: NodeComponents
  /** HTTP API base URL, e.g. http://127.0.0.1:4701 */
  readonly url: string
  multiaddrs(): string[]
  stop(): Promise<void>
}

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host)
}

/** A listen that failed because the address is taken becomes PORT_IN_USE, saying which. */
function portInUse(err: unknown, message: string): unknown {
  const e = err as { code?: unknown; message?: unknown }
  const taken = e.code === 'EADDRINUSE' || (typeof e.message === 'string' && e.message.includes('EADDRINUSE'))
  return taken ? new CovenantError('PORT_IN_USE', message, { cause: err }) : err
}

/** Creates and starts a node; `stop()` shuts it down in reverse order. */
export async function createNode(init: NodeInit): Promise<CovenantNode> {
  const {
    covenant: _covenant,
    services: _services,
    exec: _exec,
    datastore: _datastore,
    jobs: _jobs,
    ...options
  } = init
  const parsed = nodeOptionsSchema.safeParse(options)
  if (!parsed.success) throw new CovenantError('CONFIG_INVALID', z.prettifyError(parsed.error))
  const opts = parsed.data
  if (opts.fault !== undefined && !opts.devnet)
    throw new CovenantError(
      'FAULT_REFUSED',
      `refusing to start with fault "${opts.fault}": fault injection is only allowed in a devnet`,
    )
  // A devnet (and so fault injection) stays on this machine: a faulty node must never face a
  // real network.
  const loopback = /^\/ip[46]\/(127\.\d+\.\d+\.\d+|::1)\//
  if (opts.devnet && (!opts.listen.every((a) => loopback.test(a)) || !isLoopbackHost(opts.httpHost)))
    throw new CovenantError('FAULT_REFUSED', 'a devnet node listens on loopback addresses only')
  const config = CovenantConfigSchema.parse(init.covenant ?? DEFAULT_COVENANT)
  await mkdir(opts.dataDir, { recursive: true })

  const key = await loadOrCreateKey(join(opts.dataDir, 'node.key'))
  const peerId = keyId(key)
  const logFile = pino.destination({ dest: join(opts.dataDir, 'node.log'), sync: true, mkdir: true })
  const logger = pino(
    { level: opts.logLevel, base: { node: peerId } },
    opts.logToStderr ? pino.multistream([{ stream: logFile }, { stream: process.stderr }]) : logFile,
  )
  const signed = await loadOrSignCovenant(opts.dataDir, key, config)
  const covenant = (): SignedCovenant => signed
  const metrics = createMetrics({ defaultMetrics: opts.defaultMetrics })

  const stops: Array<() => Promise<void> | void> = []
  const stopAll = async (): Promise<void> => {
    for (const stop of stops.reverse()) {
      try {
        await stop()
      } catch (err) {
        logger.error({ event: 'stop-failed', err: (err as Error).message })
      }
    }
    stops.length = 0
    logFile.flushSync()
  }

  try {
    const blockStore = openBlockStore({
      path: join(opts.dataDir, 'blocks.db'),
      onCorrupt: (cid, reason) => logger.error({ event: 'block-corrupt', cid, reason }),
    })
    stops.push(() => blockStore.close())
    // Opened before storage, which asks it which blocks it refuses; it reaches the view and the
    // manifests (made below) only once the node runs.
    const ledger = opts.payments.enabled
      ? openNodeLedger({
          dataDir: opts.dataDir,
          key,
          covenant,
          view: () =>
            (known ??= createView([covenant(), ...peers.list().map((p) => p.covenant)], {
              alive: (id) => peers.get(id)?.alive ?? true,
            })),
          manifest: (fn) => manifest(fn),
          devnet: opts.devnet,
          dayMs: opts.payments.dayMs,
          labelsOf: (cid) => blockStore.labelsOf(cid),
        })
      : undefined
    if (ledger !== undefined) stops.push(() => ledger.close())

    const net = createNet({
      privateKey: key,
      listen: opts.listen,
      bootstrap: opts.bootstrap,
      onInboundError: (protocol, err) => metrics.inboundErrors.inc({ protocol, code: err.code }),
    })
    await net.start().catch((err: unknown) => {
      throw portInUse(err, `a libp2p listen address (${opts.listen.join(', ')}) is in use`)
    })
    stops.push(() => net.stop())

    const peers = createPeerTable(
      { net, covenant, logger },
      { heartbeatMs: opts.heartbeatMs, helloTimeoutMs: opts.helloTimeoutMs },
    )
    const storage = createStorage(
      {
        net,
        store: blockStore,
        peers,
        covenant,
        logger,
        registry: metrics.registry,
        refuses:
          ledger === undefined ? undefined : (cid, bytes, labels) => ledger.refuses(cid, bytes, labels),
      },
      { replicas: opts.replicas, repairIntervalMs: opts.repairIntervalMs },
    )
    const getBlock = async (cid: CID) => (await storage.get(cid)).bytes
    const manifest = createManifestCache({ getBlock: (cid) => getBlock(parseCid(cid)) })
    // Rebuilt when a peer comes, goes or changes covenant; covenants are verified once (exec's memo).
    let memo: View | undefined
    let known: View | undefined
    peers.onChange(() => {
      memo = undefined
      known = undefined
    })
    const view = (): View => (memo ??= createView([covenant(), ...peers.live().map((p) => p.covenant)]))
    const conflicts = openConflictStore({ path: join(opts.dataDir, 'conflicts.db'), view, manifest })
    stops.push(() => conflicts.close())
    const http = createHttpServer({ metrics })
    stops.push(() => http.close())
    let invokeVia: Gateway['invoke'] | undefined
    let enqueueVia: Gateway['enqueue'] | undefined
    const gateway: Gateway = {
      invoke: (request, options) => {
        if (invokeVia === undefined) throw new CovenantError('NOT_STARTED', 'this node has no gateway')
        return invokeVia(request, options)
      },
      provide: (invoke) => {
        invokeVia = invoke
      },
      enqueue: async (run) => {
        if (enqueueVia === undefined) throw new CovenantError('NOT_STARTED', 'this node keeps no jobs')
        return enqueueVia(run)
      },
      provideJobs: (enqueue) => {
        enqueueVia = enqueue
      },
    }

    const components: NodeComponents = {
      key,
      peerId,
      dataDir: opts.dataDir,
      covenant,
      net,
      peers,
      blockStore,
      storage,
      getBlock,
      manifest,
      view,
      http,
      logger,
      metrics,
      conflicts,
      calls: createCallFeed(),
      gateway,
      stores: createNodeStores(),
      fault: opts.fault,
      ledger,
    }
    // The built-in services first, then the caller's. Each declares (a Pick of NodeComponents)
    // the few components it uses, so a test can build it from those alone.
    const factories: NodeServiceFactory[] = [
      statusService,
      blocksService,
      execService(init.exec),
      dashboardService({ apps: opts.apps }),
      datastoreService(init.datastore),
      paymentsService(opts.payments),
      jobsService(init.jobs),
      ...(init.services ?? []),
    ]
    const services: NodeService[] = []
    for (const factory of factories) services.push(await factory(components))

    await http.listen({ host: opts.httpHost, port: opts.httpPort }).catch((err: unknown) => {
      throw portInUse(err, `HTTP port ${opts.httpPort} on ${opts.httpHost} is in use`)
    })
    const address = http.server.address() as AddressInfo
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
    const url = `http://${host}:${address.port}`

    await storage.start()
    stops.push(() => storage.stop())
    await peers.start()
    stops.push(() => peers.stop())
    for (const service of services) {
      await service.start?.()
      if (service.stop !== undefined) stops.push(() => service.stop!())
    }
    logger.info({ event: 'ready', multiaddrs: net.multiaddrs(), http: url, covenantVersion: signed.version })

    return {
      peerId,
      components,
      url,
      multiaddrs: () => net.multiaddrs(),
      stop: async () => {
        logger.info({ event: 'stopping' })
        await stopAll()
      },
    }
  } catch (err) {
    await stopAll()
    throw err
  }
}
