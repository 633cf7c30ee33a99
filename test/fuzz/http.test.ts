/**
 * Fuzzing the HTTP API of a real node: every route `API_ROUTES` lists, with path parameters,
 * query strings and bodies changed from real ones or made up (unicode, percent-encoding, repeated
 * keys, numbers that are not, JSON that is not, content types that lie, bodies over the limit),
 * and requests no route expects (any method, any path, any header). Every answer is the route's
 * reply or the one error shape `{ error: { code, message } }` with its code's status, never
 * INTERNAL, and the node keeps serving. Server-sent event routes go over a real socket.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { API_ROUTES, DEFAULT_BODY_LIMIT, type RouteSpec } from '../../src/api/index.ts'
import { delegateWrite, revoke } from '../../src/caps/index.ts'
import { createKeyCommit } from '../../src/datastore/index.ts'
import { bytesFieldsToJSON, toBase64 } from '../../src/encoding/index.ts'
import { createRequest, requestToJSON } from '../../src/exec/index.ts'
import { generateKey, keyId } from '../../src/keys/index.ts'
import { bytes, deepValue, edgeString, jsonValue, mutate, mutationOf, text } from './arbitraries.ts'
import { fuzz } from './fuzz.ts'
import {
  ADD,
  assertHttpReply,
  assertServing,
  type FuzzNode,
  type HttpResult,
  startFuzzNode,
} from './node-fixture.ts'

/** Strings for a path parameter or a query value: real ids, numbers that are not, anything. */
const param = (real: string[]) =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...real) },
    { weight: 3, arbitrary: text },
    { weight: 2, arbitrary: edgeString },
    {
      weight: 1,
      arbitrary: fc.constantFrom('-1', '0', '1e3', '0x10', '1.5', 'Infinity', '9007199254740993', ''),
    },
  )

const CONTENT_TYPES = [
  undefined,
  'application/json',
  'application/json; charset=utf-8',
  'application/json; charset=utf-16',
  'text/plain',
  'application/octet-stream',
  'multipart/form-data; boundary=x',
  'application/x-www-form-urlencoded',
  '*/*',
  'application/json, text/plain',
  '',
]

/**
 * `s` percent-encoded; a lone surrogate (which encodeURIComponent refuses) as the three bytes
 * WTF-8 gives it, so the node sees a path that is not UTF-8.
 */
function percentEncoded(s: string): string {
  let out = ''
  for (const ch of s) {
    const u = ch.charCodeAt(0)
    if (ch.length === 1 && u >= 0xd800 && u <= 0xdfff)
      out += [0xe0 | (u >> 12), 0x80 | ((u >> 6) & 0x3f), 0x80 | (u & 0x3f)]
        .map((b) => `%${b.toString(16).toUpperCase()}`)
        .join('')
    else out += encodeURIComponent(ch)
  }
  return out
}

/**
 * JSON text of a body; a bigint a mutation made (a number retyped) is written as the integer it
 * is, past what a double holds, and a value too deep to write is sent as deep by hand.
 */
function jsonText(value: unknown): string {
  const big = new Map<string, string>()
  let text: string | undefined
  try {
    text = JSON.stringify(value, (_key, v: unknown) => {
      if (typeof v !== 'bigint') return v
      const mark = `\u0000bigint${big.size}\u0000`
      big.set(mark, v.toString())
      return mark
    })
  } catch {
    return '['.repeat(20_000)
  }
  if (text === undefined) return 'null'
  let out = text
  for (const [mark, digits] of big) out = out.replace(JSON.stringify(mark), digits)
  return out
}

describe('fuzz: the HTTP API of a real node', { timeout: 30 * 60_000 }, () => {
  let f: FuzzNode
  /** real bodies per route, made fresh for each case where they hold a time window */
  let bodies: Record<string, () => Promise<unknown[]>>
  let realParams: string[]

  before(async () => {
    f = await startFuzzNode()
    const writer = await generateKey()
    const grant = await delegateWrite({
      issuer: f.caller,
      audience: keyId(writer),
      namespace: f.ns,
      prefix: 'notes/',
      expiresAt: Date.now() + 24 * 3600_000,
    })
    const revocation = await revoke({ issuer: f.caller, namespace: f.ns, grant })
    const b64 = (v: unknown) => toBase64(dagCbor.encode(v))
    bodies = {
      '/v1/invoke': async () => [
        {
          request: requestToJSON(
            createRequest(f.caller, { fn: f.fn, export: 'add', args: [2, 3], k: 1, q: 1 }).request,
          ),
        },
        {
          request: requestToJSON(
            createRequest(f.caller, { fn: f.fn, export: 'add', args: ['x', { y: [] }] }).request,
          ),
          trust: { minQuorum: 1, minEligibleFraction: 0 },
        },
      ],
      '/v1/functions': async () => [{ code: ADD, manifest: toBase64(f.manifestBytes) }],
      '/v1/functions/inspect': async () => [
        { code: ADD },
        { code: 'export const f = (x: number): number => x\nimport y from "y"', typescript: true },
      ],
      '/v1/stores': async () => [{ descriptor: bytesFieldsToJSON(f.descriptor) }],
      '/v1/stores/:ns/commit': async () => [
        {
          commit: b64(
            await createKeyCommit({
              issuer: f.caller,
              ns: f.ns,
              writes: [{ key: 'notes/b', value: [1, 'two'] }],
            }),
          ),
        },
        {
          commit: b64(
            await createKeyCommit({
              issuer: writer,
              ns: f.ns,
              writes: [{ key: 'notes/c', value: null }],
              grants: [grant],
            }),
          ),
        },
      ],
      '/v1/stores/:ns/revocations': async () => [{ revocation: b64(revocation) }],
    }
    realParams = [f.fn, f.codeCid, f.ns, 'notes/a', 'notes', f.node.peerId]
  })
  after(async () => {
    await f?.stop()
  })

  /** The path of `spec` with `values` for its parameters, each encoded or left raw. */
  function pathOf(spec: RouteSpec, values: Array<{ value: string; raw: boolean }>): string {
    let i = 0
    return spec.path.replace(/:(\w+)/g, () => {
      const { value, raw } = values[i++ % values.length]
      return raw ? value : percentEncoded(value)
    })
  }

  /** Sends a request to the node: through `inject()`, or over a real socket for event streams. */
  async function send(
    spec: RouteSpec | undefined,
    req: { method: string; url: string; headers: Record<string, string>; payload?: string | Buffer },
  ): Promise<HttpResult | undefined> {
    if (spec?.reply !== 'events') {
      try {
        return await f.node.components.http.inject({
          method: req.method as 'GET',
          url: req.url,
          headers: req.headers,
          payload: req.payload,
        })
      } catch {
        return undefined // the request could not even be written (inject refuses it)
      }
    }
    const gone = new AbortController()
    let res: Response
    try {
      res = await fetch(f.node.url + req.url, {
        method: req.method,
        headers: req.headers,
        signal: gone.signal,
      })
    } catch {
      return undefined // not a URL fetch sends
    }
    if (res.status === 200) {
      assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/)
      gone.abort()
      return { statusCode: 200, body: '', json: () => undefined }
    }
    const body = await res.text()
    return { statusCode: res.status, body, json: () => JSON.parse(body) }
  }

  it('every route: params, query and body changed from real ones or made up', async (t) => {
    t.diagnostic(`routes: ${API_ROUTES.length}`)
    const input = fc.record({
      route: fc.integer({ min: 0, max: API_ROUTES.length - 1 }),
      params: fc.array(fc.record({ value: param(['x']), raw: fc.boolean() }), { minLength: 1, maxLength: 2 }),
      realParam: fc.boolean(),
      query: fc.dictionary(
        fc.oneof(
          fc.constantFrom(
            'limit',
            'after',
            'at',
            'prefix',
            'before',
            'reader',
            'backlog',
            'executor',
            'tags',
          ),
          edgeString,
        ),
        fc.oneof(param(['10', '0', '1000', '']), fc.array(param(['1']), { minLength: 2, maxLength: 3 })),
        { maxKeys: 3, noNullPrototype: true },
      ),
      body: fc.oneof(
        fc.record({
          how: fc.constant('mutated' as const),
          pick: fc.nat(),
          mutations: fc.array(mutationOf(jsonValue), { minLength: 1, maxLength: 3 }),
        }),
        fc.record({ how: fc.constant('real' as const), pick: fc.nat() }),
        fc.record({ how: fc.constant('json' as const), value: fc.oneof(jsonValue, deepValue) }),
        fc.record({
          how: fc.constant('text' as const),
          value: fc.oneof(
            text,
            fc.constantFrom(
              '{',
              '{"a":',
              '[1,]',
              '{"__proto__":{"x":1}}',
              '{"constructor":{"prototype":{}}}',
              'null',
              '"str"',
              '\ufeff{}',
            ),
          ),
        }),
        fc.record({ how: fc.constant('bytes' as const), value: bytes }),
        // right at the route's body limit, one byte under it or one over
        fc.record({ how: fc.constant('limit' as const), off: fc.integer({ min: -1, max: 1 }) }),
      ),
      contentType: fc.constantFrom(...CONTENT_TYPES),
    })
    await fuzz(
      t,
      'http-routes',
      fc.asyncProperty(input, async (c) => {
        const spec = API_ROUTES[c.route]
        const params = c.realParam
          ? c.params.map((p, i) => ({ value: realParams[(c.route + i) % realParams.length], raw: p.raw }))
          : c.params
        const query = new URLSearchParams()
        for (const [k, v] of Object.entries(c.query))
          for (const x of Array.isArray(v) ? v : [v]) query.append(k, x)
        const qs = query.size > 0 ? `?${query}` : ''
        const headers: Record<string, string> = {}
        if (c.contentType !== undefined) headers['content-type'] = c.contentType
        let payload: string | Buffer | undefined
        if (spec.method !== 'GET') {
          const real = (await bodies[spec.path]?.()) ?? []
          const b = c.body
          if (b.how === 'mutated' || b.how === 'real') {
            const sample = real.length > 0 ? real[b.pick % real.length] : {}
            payload = jsonText(b.how === 'real' ? sample : mutate(sample, b.mutations))
            headers['content-type'] ??= 'application/json'
          } else if (b.how === 'json') payload = jsonText(b.value)
          else if (b.how === 'text') payload = b.value
          else if (b.how === 'bytes') payload = Buffer.from(b.value)
          else payload = Buffer.alloc((spec.bodyLimit ?? DEFAULT_BODY_LIMIT) + b.off, 0x20)
        }
        const res = await send(spec, {
          method: spec.method,
          url: pathOf(spec, params) + qs,
          headers,
          payload,
        })
        fc.pre(res !== undefined)
        assertHttpReply(res, spec, `${spec.method} ${spec.path}`)
        const health = await f.node.components.http.inject({ method: 'GET', url: '/health' })
        assert.equal(health.statusCode, 200)
      }),
    )
    await assertServing(f)
  })

  it('requests no route expects: any method, path, header and body', async (t) => {
    const input = fc.record({
      method: fc.constantFrom(
        'GET',
        'POST',
        'PUT',
        'DELETE',
        'PATCH',
        'OPTIONS',
        'HEAD',
        'PROPFIND',
        'TRACE',
      ),
      path: fc.oneof(
        fc.constantFrom(
          ...API_ROUTES.map((r) => r.path),
          '/',
          '//',
          '/v1',
          '/v1/',
          '/ui/x',
          '/ui/../../etc/passwd',
          '/v1/blocks/%',
          '/v1/blocks/%E0%A4%A',
          '/v1/stores/%00/keys/%2F',
        ),
        text.map((s) => `/${s}`),
        fc
          .tuple(fc.constantFrom('/v1/blocks/', '/v1/stores/', '/v1/functions/'), text)
          .map(([a, b]) => a + b),
        fc.integer({ min: 1000, max: 100_000 }).map((n) => `/v1/blocks/${'a'.repeat(n)}`),
      ),
      query: fc.oneof(
        fc.constant(''),
        text.map((s) => `?${s}`),
        fc.constant('?a=1&a=2&__proto__=x&constructor=y'),
        fc.constant('?%'),
      ),
      headers: fc.dictionary(
        fc.constantFrom(
          'content-type',
          'accept',
          'content-encoding',
          'transfer-encoding',
          'x-covenant-tags',
          'origin',
          'expect',
        ),
        fc.oneof(
          fc.constantFrom(...CONTENT_TYPES.filter((c) => c !== undefined), 'gzip', 'chunked', '100-continue'),
          fc.string({ maxLength: 20 }),
        ),
        { maxKeys: 3, noNullPrototype: true },
      ),
      body: fc.option(
        fc.oneof(
          text,
          bytes.map((b) => Buffer.from(b)),
          jsonValue.map((v) => JSON.stringify(v) ?? 'null'),
        ),
      ),
    })
    await fuzz(
      t,
      'http-raw',
      fc.asyncProperty(input, async (c) => {
        const url = c.path + c.query
        const spec = API_ROUTES.find((r) => r.path === c.path && r.method === c.method)
        const payload = c.method === 'GET' || c.method === 'HEAD' ? undefined : (c.body ?? undefined)
        const res = await send(spec, { method: c.method, url, headers: c.headers, payload })
        fc.pre(res !== undefined)
        // a HEAD reply has no body to check; a preflight is answered 204 unless the URL is bad
        if (c.method === 'HEAD') assert.ok(res.statusCode < 500, `HEAD ${url}: ${res.statusCode}`)
        else if (c.method === 'OPTIONS' && res.statusCode === 204) assert.equal(res.body, '')
        else if (spec !== undefined || res.statusCode >= 400) assertHttpReply(res, spec, `${c.method} ${url}`)
        const health = await f.node.components.http.inject({ method: 'GET', url: '/health' })
        assert.equal(health.statusCode, 200)
      }),
    )
    await assertServing(f)
  })
})
