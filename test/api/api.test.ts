/** The API as data: route specs, paths, and the schemas a node and a client share. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  API_ROUTES,
  ConflictsQuerySchema,
  DeployBodySchema,
  getBlockRoute,
  InvokeReplySchema,
  PutBlockQuerySchema,
  routePath,
} from '../../src/api/index.ts'
import type { CovenantError } from '../../src/errors/index.ts'

describe('api', () => {
  it('names each route once, and gives every JSON body and query a schema', () => {
    const keys = API_ROUTES.map((r) => `${r.method} ${r.path}`)
    assert.equal(new Set(keys).size, keys.length)
    for (const r of API_ROUTES) {
      assert.ok(r.path.startsWith('/'), r.path)
      if (r.method === 'GET') assert.equal(r.body, undefined, r.path)
      if (r.path.includes(':')) assert.ok(r.params !== undefined, r.path)
    }
  })

  it('fills path parameters, encoded, and refuses a missing one', () => {
    assert.equal(routePath(getBlockRoute, { cid: 'bafy' }), '/v1/blocks/bafy')
    assert.equal(routePath(getBlockRoute, { cid: '../x?y' }), '/v1/blocks/..%2Fx%3Fy')
    assert.throws(
      () => routePath(getBlockRoute),
      (e: CovenantError) => e.code === 'INVALID_INPUT',
    )
  })

  it('takes no tags on a block put, saying where tags come from, and refuses query fields it does not know', () => {
    assert.deepEqual(PutBlockQuerySchema.parse({}), {})
    for (const bad of [{ tags: '' }, { tags: 'a,b' }, { color: 'red' }]) {
      const parsed = PutBlockQuerySchema.safeParse(bad)
      assert.equal(parsed.success, false, JSON.stringify(bad))
      assert.match(parsed.error?.issues[0].message ?? '', /signed manifest/)
    }
    assert.deepEqual(ConflictsQuerySchema.parse({ limit: '5' }), { limit: 5 })
    for (const bad of [{ limit: '0' }, { limit: '1001' }, { limit: 'x' }, { executor: 'e'.repeat(200) }])
      assert.equal(ConflictsQuerySchema.safeParse(bad).success, false, JSON.stringify(bad))
  })

  it('bounds a deploy body, and reads a gateway’s report of who it asked as typed errors', () => {
    assert.equal(DeployBodySchema.safeParse({ code: 'x', manifest: 'not base64!' }).success, false)
    assert.equal(DeployBodySchema.safeParse({ code: 'x', manifest: 'AAAA', more: 1 }).success, false)
    const tried = [
      { peer: 'p', outcome: 'failed', ms: 3, error: { code: 'MADE_UP', message: 'm' } },
      { peer: 'q', outcome: 'failed', ms: 3, error: { code: 'PEER_TIMEOUT', message: 'slow' } },
    ]
    const shape = InvokeReplySchema.shape.tried
    assert.deepEqual(
      shape.parse(tried).map((a) => a.error?.code),
      ['PROTOCOL_ERROR', 'PEER_TIMEOUT'],
    )
    assert.equal(shape.safeParse([{ peer: 'p', outcome: 'lied', ms: 1 }]).success, false)
    assert.equal(shape.safeParse([{ peer: 'p', outcome: 'agreed', ms: -1 }]).success, false)
  })
})
