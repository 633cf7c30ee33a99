/**
 * The node's Prometheus registry, one per node so several nodes can share a process, with the
 * metrics of the node itself. Parts and services add theirs to the same registry.
 */
import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client'

export interface NodeMetrics {
  registry: Registry
  inboundErrors: Counter<'protocol' | 'code'>
  httpDuration: Histogram<'route' | 'status'>
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): NodeMetrics {
  const registry = new Registry()
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry })
  const registers = [registry]
  return {
    registry,
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
