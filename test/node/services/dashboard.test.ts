/**
 * The dashboard service over real sockets: the page with its security headers, its hashed assets
 * cached for good and revalidated by ETag, nothing else served from the dashboard's folder, and the
 * calls feed as server-sent events. And the storage route the storage page reads, and the apps a
 * node is given, each under /apps/<name>/.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { GUESTBOOK_DIST } from '../../../examples/guestbook/setup.ts'
import { connect, generateKey, type PrivateKey } from '../../../src/client/index.ts'
import { type CovenantNode, createNode } from '../../../src/node/index.ts'
import { DASHBOARD_PAGE, loadDashboard } from '../../../src/web/index.ts'

describe('dashboard service', () => {
  let dir: string
  let node: CovenantNode
  let key: PrivateKey

  before(async () => {
    key = await generateKey()
    dir = await mkdtemp(join(tmpdir(), 'covenant-dashboard-'))
    node = await createNode({
      dataDir: dir,
      defaultMetrics: false,
      logLevel: 'silent',
      apps: { guestbook: GUESTBOOK_DIST },
    })
  })
  after(async () => {
    await node?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('serves the page on / with a strict content security policy, revalidated by ETag', async () => {
    const res = await fetch(`${node.url}/`)
    assert.equal(res.status, 200)
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8')
    assert.equal(res.headers.get('cache-control'), 'no-cache')
    const csp = res.headers.get('content-security-policy') ?? ''
    assert.match(csp, /default-src 'none'; script-src 'self';/)
    // it may read other nodes' peer lists (a re-check link's nodes), and run nothing from them
    assert.match(csp, /connect-src 'self' http: https:;/)
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff')
    assert.match(await res.text(), /<script type="module" src="\/ui\/app-\w+\.js">/)
    const again = await fetch(`${node.url}/`, { headers: { 'if-none-match': res.headers.get('etag')! } })
    assert.equal(again.status, 304)
  })

  it('serves each asset with its type, cached for good, and nothing else', async () => {
    for (const [name, asset] of loadDashboard()) {
      if (name === DASHBOARD_PAGE) continue
      const res = await fetch(`${node.url}/ui/${name}`)
      assert.equal(res.status, 200, name)
      assert.equal(res.headers.get('content-type'), asset.type)
      assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable')
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(asset.body))
    }
    for (const path of [
      '/ui/nothing.js',
      `/ui/${DASHBOARD_PAGE}`,
      '/ui/..%2F..%2F..%2Fpackage.json',
      '/ui/%2e%2e%2fassets.ts',
      `/ui/${'x'.repeat(300)}`,
    ]) {
      const res = await fetch(`${node.url}${path}`)
      assert.ok(res.status === 404 || res.status === 400, `${path}: ${res.status}`)
      const body = (await res.json()) as { error: { code: string } }
      assert.ok(['NOT_FOUND', 'INVALID_INPUT'].includes(body.error.code), path)
    }
  })

  it('streams the calls feed as server-sent events, and refuses a bad backlog', async () => {
    const client = await connect({ node: node.url })
    const gone = new AbortController()
    const events = client.calls({ backlog: 0, signal: gone.signal })
    // the default covenant executes nothing: a call through this gateway fails, and shows
    const fn = (await client.deploy('export const f = () => 1', { key: key })).cid
    const first = events.next()
    await client.invoke(fn, 'f', [], { key: key }).catch(() => {})
    const { value } = await first
    assert.equal(value?.role, 'gateway')
    assert.equal(value?.fn, fn)
    assert.equal(value?.outcome, 'NO_EXECUTORS')
    gone.abort()
    assert.equal((await events.next()).done, true)
    const bad = await fetch(`${node.url}/v1/calls?backlog=-1`)
    assert.equal(bad.status, 400)
  })

  it('tells what it stores and why, against its covenant’s limit, and refuses a bad page', async () => {
    const client = await connect({ node: node.url })
    // tags come only from signed manifests: a block put on its own has none
    const { cid } = await client.putBlock(new TextEncoder().encode('held here'))
    const storage = await client.storage()
    assert.equal(storage.storeEnabled, true)
    assert.equal(storage.maxBytes, 1024 ** 3)
    assert.ok(storage.usedBytes >= 9)
    const held = storage.held.find((b) => b.cid === cid)
    // alone, this node is the only willing holder: the closest
    assert.deepEqual(held?.why, { role: 'holder', rank: 1 })
    assert.deepEqual(held?.tags, [])
    assert.equal((await client.storage({ limit: 1, after: cid })).held.length <= 1, true)
    for (const query of ['limit=0', 'limit=5000', 'color=red'])
      assert.equal((await fetch(`${node.url}/v1/storage?${query}`)).status, 400, query)
  })

  it('serves the apps it is given under /apps/<name>/, the same way, and nothing else', async () => {
    const page = await fetch(`${node.url}/apps/guestbook/`)
    assert.equal(page.status, 200)
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self';/)
    const html = await page.text()
    const script = /<script type="module" src="(app-\w+\.js)">/.exec(html)?.[1]
    assert.ok(script !== undefined, 'the page loads its script beside itself')
    const asset = await fetch(`${node.url}/apps/guestbook/${script}`)
    assert.equal(asset.headers.get('cache-control'), 'public, max-age=31536000, immutable')
    assert.ok(Buffer.from(await asset.arrayBuffer()).equals(loadDashboard(GUESTBOOK_DIST).get(script)!.body))
    const bare = await fetch(`${node.url}/apps/guestbook`, { redirect: 'manual' })
    assert.deepEqual([bare.status, bare.headers.get('location')], [308, '/apps/guestbook/'])
    for (const path of [
      '/apps/other/',
      '/apps/other',
      `/apps/guestbook/${DASHBOARD_PAGE}`,
      '/apps/guestbook/x.js',
      '/apps/guestbook/..%2F..%2Fpackage.json',
    ])
      assert.equal((await fetch(`${node.url}${path}`, { redirect: 'manual' })).status, 404, path)
    // a node told to serve an app that was never built does not start
    await assert.rejects(
      createNode({
        dataDir: join(dir, 'other'),
        logLevel: 'silent',
        defaultMetrics: false,
        apps: { nothing: join(dir, 'missing') },
      }),
      { code: 'CONFIG_INVALID' },
    )
  })
})
