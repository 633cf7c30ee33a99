/** `createNode`: composes key, covenant, network, block store, peer table, storage and HTTP API. */
import { mkdir } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import pino, { type Logger } from 'pino'
import { z } from 'zod'
import { type BlockStore, type CID, openBlockStore } from '../content/index.ts'
import {
  type CovenantConfig,
  CovenantConfigSchema,
  DEFAULT_COVENANT,
  type SignedCovenant,
} from '../covenant/index.ts'
import { CovenantError } from '../errors/index.ts'
import { keyId, loadOrCreateKey, type PrivateKey } from '../keys/index.ts'
import { createNet, type Net } from '../net/index.ts'
import { type ConflictStore, openConflictStore } from './conflict-store.ts'
import { type ExecServiceOptions, execService } from './exec-service.ts'
import { createHttpApi } from './http-api.ts'
import { createMetrics, type NodeMetrics } from './metrics.ts'
import { PeerTable } from './peer-table.ts'
import { loadOrSignCovenant } from './signed-covenant-file.ts'
import { Storage } from './storage.ts'

/** Options of a node; defaults are written once, here. */
export const nodeOptionsSchema = z.strictObject({
  /** data directory: node.key, covenant.cbor, blocks.db, node.log */
  dataDir: z.string().min(1),
  /** libp2p listen addresses @default ['/ip4/127.0.0.1/tcp/0'] */
  listen: z.array(z.string()).default(['/ip4/127.0.0.1/tcp/0']),
  /** peers to join through, each ending in /p2p/<id> @default [] */
  bootstrap: z.array(z.string()).default([]),
  /** HTTP API host; loopback unless the operator opens it @default '127.0.0.1' */
  httpHost: z.string().default('127.0.0.1'),
  /** HTTP API port; 0 picks a free one @default 0 */
  httpPort: z.number().int().min(0).max(65535).default(0),
  /** holders per block (k) @default 3 */
  replicas: z.number().int().min(1).max(20).default(3),
  /** hello to every peer this often @default 5000 */
  heartbeatMs: z.number().int().min(50).max(600_000).default(5000),
  /** a hello not answered in this time fails @default 2000 */
  helloTimeoutMs: z.number().int().min(50).max(60_000).default(2000),
  /** repair loop period @default 5000 */
  repairIntervalMs: z.number().int().min(50).max(3_600_000).default(5000),
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
})
export type NodeOptions = z.input<typeof nodeOptionsSchema>

export interface NodeInit extends NodeOptions {
  /** the operator's covenant @default DEFAULT_COVENANT */
  covenant?: CovenantConfig
  /** extra services composed after the built-in ones, in order */
  services?: NodeServiceFactory[]
  /** options of the built-in exec service */
  exec?: ExecServiceOptions
}

/**
 * What a service added to the node receives. Everything is started when a factory runs except
 * the HTTP server (routes can still be added) and the peer and repair loops.
 */
export interface NodeComponents {
  key: PrivateKey
  peerId: string
  dataDir: string
  /** the node's current signed covenant */
  covenant(): SignedCovenant
  net: Net
  /** live peer table: `peers.live()` gives peers with verified covenants */
  peers: PeerTable
  blockStore: BlockStore
  storage: Storage
  /** fetches a block from here or the network, checked against its CID */
  getBlock(cid: CID): Promise<Uint8Array>
  /** add routes (e.g. `POST /v1/invoke`) here; it listens after every service was created */
  http: FastifyInstance
  logger: Logger
  metrics: NodeMetrics
  /** services created so far, by name: where a sandbox pool service is found by the exec service */
  services: Map<string, NodeService>
  /** verified conflict evidence, `<data>/conflicts.db` */
  conflicts: ConflictStore
  fault?: string
}

/** A service composed into the node. `start` runs after the HTTP server listens; `stop` in reverse order. */
export interface NodeService {
  name: string
  start?(): Promise<void>
  stop?(): Promise<void>
}

export type NodeServiceFactory = (components: NodeComponents) => NodeService | Promise<NodeService>

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

/** Creates and starts a node; `stop()` shuts it down in reverse order. */
export async function createNode(init: NodeInit): Promise<CovenantNode> {
  const { covenant: _covenant, services: _services, exec: _exec, ...options } = init
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
    const conflicts = openConflictStore({ path: join(opts.dataDir, 'conflicts.db') })
    stops.push(() => conflicts.close())

    const net = createNet({
      privateKey: key,
      listen: opts.listen,
      bootstrap: opts.bootstrap,
      onInboundError: (protocol, err) => metrics.inboundErrors.inc({ protocol, code: err.code }),
    })
    await net.start()
    stops.push(() => net.stop())

    const peers = new PeerTable({
      net,
      covenant,
      logger,
      heartbeatMs: opts.heartbeatMs,
      helloTimeoutMs: opts.helloTimeoutMs,
    })
    const storage = new Storage({
      net,
      store: blockStore,
      peers,
      covenant,
      logger,
      metrics,
      replicas: opts.replicas,
      repairIntervalMs: opts.repairIntervalMs,
    })
    const http = createHttpApi({ net, peers, storage, covenant, metrics, conflicts })
    stops.push(() => http.close())

    const components: NodeComponents = {
      key,
      peerId,
      dataDir: opts.dataDir,
      covenant,
      net,
      peers,
      blockStore,
      storage,
      getBlock: async (cid) => (await storage.get(cid)).bytes,
      http,
      logger,
      metrics,
      services: new Map(),
      conflicts,
      fault: opts.fault,
    }
    const services: NodeService[] = []
    for (const factory of [execService(init.exec), ...(init.services ?? [])]) {
      const service = await factory(components)
      components.services.set(service.name, service)
      services.push(service)
    }

    await http.listen({ host: opts.httpHost, port: opts.httpPort })
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
