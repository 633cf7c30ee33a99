/**
 * The node's HTTP server: fastify with open CORS (a browser page may call a node directly), a
 * latency histogram, and one way out for every error — ours, fastify's (a body too large, a
 * content type it cannot parse, a URL that does not decode) and unknown routes alike:
 * `{ "error": { code, message, details? } }` with the status ERROR_CODES gives the code.
 * Services add routes with {@link route}, which parses every input with the route's schemas from
 * `src/api`.
 */
import { type OutgoingHttpHeaders, STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import Fastify, {
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type RouteOptions,
} from 'fastify'
import { DEFAULT_BODY_LIMIT, type RouteInput, type RouteReply, type RouteSpec } from '../api/index.ts'
import { CovenantError, parseOrThrow } from '../errors/index.ts'
import type { NodeMetrics } from './metrics.ts'

export type { FastifyInstance as HttpServer, FastifyReply }

/** Maps anything thrown in a route (ours or fastify's) to a CovenantError. */
function toCovenantError(err: unknown): CovenantError {
  if (err instanceof CovenantError) return err
  const e = err as { code?: string; statusCode?: number; message?: string }
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return new CovenantError('MESSAGE_TOO_LARGE', 'the request body is too large')
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500)
    return new CovenantError('INVALID_INPUT', e.message ?? 'bad request', { cause: err })
  return CovenantError.from(err)
}

function allowCors(reply: FastifyReply): void {
  reply.header('access-control-allow-origin', '*')
  reply.header('access-control-allow-methods', 'GET, PUT, POST, OPTIONS')
  reply.header('access-control-allow-headers', 'content-type')
  reply.header('access-control-max-age', '600')
}

/** The longest message an error reply carries; protocol error replies are cut alike (`net`). */
const MAX_ERROR_MESSAGE = 1024

function sendError(reply: FastifyReply, err: unknown): void {
  const e = toCovenantError(err)
  allowCors(reply)
  // A message may quote what the caller sent (fastify's and ours quote the URL, which can be
  // 80 KiB): cut, so the reply stays within the error shape every client reads (ErrorJSONSchema).
  const error = { ...e.toJSON(), message: e.message.slice(0, MAX_ERROR_MESSAGE) }
  void reply.code(e.status).send({ error })
}

/**
 * Answers a request Node's parser refused before fastify saw it (headers over 16 KiB, a request
 * line that is not HTTP, headers that never finish) in the one error shape; fastify's own answer
 * is `{ error, message, statusCode }`.
 */
function onClientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const e =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new CovenantError('MESSAGE_TOO_LARGE', 'the request line and headers are larger than 16 KiB')
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new CovenantError('INVALID_INPUT', 'the request did not arrive in time')
        : new CovenantError('INVALID_INPUT', 'the request is not valid HTTP')
  const body = JSON.stringify({ error: e.toJSON() })
  if (socket.writable)
    socket.write(
      `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/json; charset=utf-8\r\nAccess-Control-Allow-Origin: *\r\n` +
        `Connection: close\r\n\r\n${body}`,
    )
  socket.destroy()
}

/** Creates the HTTP server with CORS, metrics and error handling, and no routes yet. */
export function createHttpServer(init: { metrics: Pick<NodeMetrics, 'httpDuration'> }): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: DEFAULT_BODY_LIMIT,
    frameworkErrors: (err, _req, reply) => sendError(reply, err),
    clientErrorHandler: onClientError,
  })
  const started = new WeakMap<FastifyRequest, number>()

  app.addHook('onRequest', async function corsAndClock(req, reply) {
    allowCors(reply)
    started.set(req, performance.now())
  })
  app.addHook('onResponse', async function observeDuration(req, reply) {
    const ms = performance.now() - (started.get(req) ?? performance.now())
    init.metrics.httpDuration.observe(
      { route: req.routeOptions.url ?? 'unknown', status: String(reply.statusCode) },
      ms / 1000,
    )
  })
  app.options('*', async function preflight(_req, reply) {
    return reply.code(204).send()
  })
  app.setErrorHandler(function onError(err, _req, reply) {
    sendError(reply, err)
  })
  app.setNotFoundHandler(function noRoute(req, reply) {
    sendError(reply, new CovenantError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`))
  })
  return app
}

function asBytes(body: unknown): Uint8Array {
  if (!(body instanceof Uint8Array)) throw new CovenantError('INVALID_INPUT', 'the body must be raw bytes')
  return new Uint8Array(body.buffer, body.byteOffset, body.byteLength)
}

/** A comment line every so often keeps an idle event stream open through proxies. */
const EVENT_STREAM_KEEPALIVE_MS = 15_000

/**
 * Sends `events` as server-sent events (`data: <JSON>`), each read with the spec's event schema
 * first (so fields the schema does not name never leave the node), until the events end or the
 * caller goes away. Waits for the socket to drain when the caller reads slowly.
 */
async function streamEvents(
  spec: RouteSpec,
  reply: FastifyReply,
  events: AsyncIterable<unknown>,
  gone: AbortSignal,
): Promise<void> {
  const raw = reply.raw
  reply.hijack()
  raw.writeHead(200, {
    ...(reply.getHeaders() as OutgoingHttpHeaders),
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    'x-accel-buffering': 'no',
  })
  raw.write(': connected\n\n')
  const keepalive = setInterval(() => raw.write(': keepalive\n\n'), EVENT_STREAM_KEEPALIVE_MS)
  keepalive.unref()
  try {
    if (gone.aborted) return
    for await (const event of events) {
      if (gone.aborted) break
      const data = spec.event === undefined ? event : spec.event.parse(event)
      if (!raw.write(`data: ${JSON.stringify(data)}\n\n`))
        await new Promise<void>((resolve) => {
          raw.once('drain', resolve)
          gone.addEventListener('abort', () => resolve(), { once: true })
        })
    }
  } finally {
    clearInterval(keepalive)
    raw.end()
  }
}

/**
 * Why a route's `gone` signal aborts: one reason made once (every response closes, and `abort()`
 * without a reason builds a DOMException with its stack each time).
 */
const RESPONSE_CLOSED = new Error('the HTTP response was closed')

/**
 * Serves `spec` with `handler`: the path parameters, query and body are parsed with the spec's
 * schemas first (INVALID_INPUT naming the field), a `'bytes'` body arrives as a Uint8Array whatever
 * its content type, a `'bytes'` reply goes out as application/octet-stream, and an `'events'`
 * reply as server-sent events. The handler gets fastify's reply for headers and a signal that
 * aborts when the caller goes away; whatever it throws becomes the error reply.
 */
export function route<S extends RouteSpec>(
  app: FastifyInstance,
  spec: S,
  handler: (input: RouteInput<S>, reply: FastifyReply, gone: AbortSignal) => Promise<RouteReply<S>>,
): void {
  const options: RouteOptions = {
    method: spec.method,
    url: spec.path,
    bodyLimit: spec.bodyLimit,
    handler: async (req, reply) => {
      const gone = new AbortController()
      reply.raw.once('close', () => gone.abort(RESPONSE_CLOSED))
      const input = {
        params: spec.params && parseOrThrow(spec.params, req.params, 'INVALID_INPUT', 'path'),
        query: spec.query && parseOrThrow(spec.query, req.query, 'INVALID_INPUT', 'query'),
        body:
          spec.body === 'bytes'
            ? asBytes(req.body)
            : spec.body && parseOrThrow(spec.body, req.body, 'INVALID_INPUT', 'body'),
      } as RouteInput<S>
      const out = await handler(input, reply, gone.signal)
      if (spec.reply === 'events') {
        // A HEAD asks for the head a GET gets and no events; Node holds a HEAD reply's head back
        // until the reply ends, so a stream kept open would never answer it.
        if (req.method === 'HEAD') gone.abort()
        await streamEvents(spec, reply, out as AsyncIterable<unknown>, gone.signal)
        return reply
      }
      if (out instanceof Uint8Array) {
        reply.header('content-type', 'application/octet-stream')
        return Buffer.from(out.buffer, out.byteOffset, out.byteLength)
      }
      return out
    },
  }
  if (spec.body !== 'bytes') {
    app.route(options)
    return
  }
  // A raw body: any content type (none too) is taken as bytes, up to the route's limit.
  void app.register(async function rawBody(raw) {
    raw.removeAllContentTypeParsers()
    raw.addContentTypeParser(
      '*',
      { parseAs: 'buffer', bodyLimit: spec.bodyLimit ?? DEFAULT_BODY_LIMIT },
      (_req, body, done) => done(null, body),
    )
    raw.addHook('onRequest', async function defaultContentType(req) {
      if (req.headers['content-type'] === undefined) req.headers['content-type'] = 'application/octet-stream'
    })
    raw.route(options)
  })
}
