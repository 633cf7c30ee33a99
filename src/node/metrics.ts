/** The node's Prometheus metrics, in a registry of its own so several nodes can share a process. */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'

export interface NodeMetrics {
  registry: Registry
  peersAlive: Gauge
  blocksStored: Gauge
  bytesStored: Gauge
  blockPuts: Counter<'result'>
  blockGets: Counter<'source'>
  repairPushes: Counter
  inboundErrors: Counter<'protocol' | 'code'>
  httpDuration: Histogram<'route' | 'status'>
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): NodeMetrics {
  const registry = new Registry()
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry })
  const registers = [registry]
  return {
    registry,
    peersAlive: new Gauge({ name: 'covenant_peers_alive', help: 'live peers in the peer table', registers }),
    blocksStored: new Gauge({ name: 'covenant_blocks_stored', help: 'blocks held by this node', registers }),
    bytesStored: new Gauge({ name: 'covenant_bytes_stored', help: 'bytes of blocks held', registers }),
    blockPuts: new Counter({
      name: 'covenant_block_puts_total',
      help: 'blocks stored locally, by result',
      labelNames: ['result'],
      registers,
    }),
    blockGets: new Counter({
      name: 'covenant_block_gets_total',
      help: 'blocks served to HTTP callers, by where they came from',
      labelNames: ['source'],
      registers,
    }),
    repairPushes: new Counter({
      name: 'covenant_repair_pushes_total',
      help: 'replicas created by the repair loop',
      registers,
    }),
    inboundErrors: new Counter({
      name: 'covenant_inbound_errors_total',
      help: 'inbound protocol requests refused or failed',
      labelNames: ['protocol', 'code'],
      registers,
    }),
    httpDuration: new Histogram({
      name: 'covenant_http_request_seconds',
      help: 'HTTP API request duration',
      labelNames: ['route', 'status'],
      buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10],
      registers,
    }),
  }
}
