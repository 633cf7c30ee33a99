/**
 * The dashboard as a person uses it, in headless Chromium against a real 5-node devnet in which
 * one node refuses to run functions tagged `demo`: the network with its five peers and the
 * refusing one marked, a function deployed and called from the playground, the call appearing
 * live with its certificate (and never its arguments), storage with why each block is held, and
 * the re-check link verifying in another page against a view built there (from the serving node,
 * or with more nodes the link names), saying what it trusts, and failing when its output or its
 * manifest is tampered with. Each page is saved as a screenshot under docs/screenshots/.
 */
import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import { deflateRawSync, inflateRawSync } from 'node:zlib'
import type { Page } from 'playwright-core'
import { connect } from '../../src/client/index.ts'
import { CovenantConfigSchema, DEFAULT_COVENANT } from '../../src/covenant/index.ts'
import { type Chromium, launchChromium } from '../fixtures/browser.ts'
import { startTestDevnet, type TestDevnet, waitFor } from '../fixtures/network.ts'

const SHOTS = new URL('../../docs/screenshots/', import.meta.url).pathname
const REFUSER = 4
/** an argument no feed may ever show */
const SECRET = 'Ada-7f3a9c-private'

const SOURCE = `// deployed from the playground
export function greet(name, ctx) {
  ctx.log('greeting ' + name.length + ' characters')
  return 'Hello, ' + name + '!'
}
export function add(a, b) {
  return a + b
}
export function card(name) {
  return { name: name, kind: 'greeting', at: 1 }
}
`

async function shoot(page: Page, name: string): Promise<void> {
  await mkdir(SHOTS, { recursive: true })
  await page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true })
}

describe('the dashboard, in headless Chromium, on a 5-node devnet', { timeout: 240_000 }, () => {
  let devnet: TestDevnet | undefined
  let browser: Chromium | undefined
  let page: Page
  let base: string
  const pageErrors: string[] = []
  let fn = ''
  let request = ''
  let recheckLink = ''

  before(async () => {
    const refusing = CovenantConfigSchema.parse({
      ...DEFAULT_COVENANT,
      statement: 'runs nothing tagged demo',
      execute: { ...DEFAULT_COVENANT.execute, enabled: true, refusedTags: ['demo'] },
    })
    const [d, b] = await Promise.allSettled([
      startTestDevnet({ nodes: 5, covenants: { [REFUSER]: refusing } }),
      launchChromium(),
    ])
    if (d.status === 'fulfilled') devnet = d.value
    if (b.status === 'fulfilled') browser = b.value
    if (d.status === 'rejected') throw d.reason
    if (b.status === 'rejected') throw b.reason
    base = devnet!.nodes[0].http
    page = await browser!.context.newPage()
    await page.setViewportSize({ width: 1280, height: 860 })
    page.on('pageerror', (err) => pageErrors.push(err.message))
  })
  after(async () => {
    await browser?.close()
    await devnet?.cleanup()
  })

  it('shows the five peers, alive, with their covenants, and marks the refusing node', async () => {
    await page.goto(`${base}/#/network`)
    const rows = page.locator('table.peers tbody tr')
    await waitFor('five peers in the table', async () => ((await rows.count()) === 5 ? true : undefined))
    for (const n of devnet!.nodes) {
      const row = page.locator(`table.peers tr[data-peer="${n.peerId}"]`)
      assert.equal(await row.count(), 1, `node ${n.index} is listed`)
      const state = await row.locator('.badge').first().textContent()
      assert.equal(state, n.index === 0 ? 'this node' : 'alive')
    }
    const refuser = devnet!.nodes[REFUSER].peerId
    assert.match(
      (await page.locator(`table.peers tr[data-peer="${refuser}"] .badge.warn`).textContent()) ?? '',
      /refuses running demo/,
    )
    // on the picture too, and only that one
    assert.equal(await page.locator('svg.ring g.peer').count(), 5)
    assert.deepEqual(
      await page
        .locator('svg.ring g.peer.refusing')
        .evaluateAll((gs) => gs.map((g) => g.getAttribute('data-peer'))),
      [refuser],
    )
    assert.equal(await page.locator('table.peers tr:has-text("✓ signed")').count(), 5)
    await shoot(page, 'network')
  })

  it('deploys and calls a function from the playground, and shows the value, fuel, logs and signers', async () => {
    await page.goto(`${base}/#/playground`)
    await page.locator('textarea.code').fill(SOURCE)
    await page.getByRole('button', { name: 'Deploy' }).click()
    const cid = page.getByTestId('function-cid')
    await cid.waitFor({ timeout: 30_000 })
    fn = (await cid.textContent()) ?? ''
    assert.match(fn, /^bafyrei/)
    assert.deepEqual(await page.locator('select option').allTextContents(), ['add', 'card', 'greet'])
    await page.locator('select').selectOption('greet')
    await page.locator('label:has-text("arguments") input').fill(JSON.stringify([SECRET]))
    await page.getByRole('button', { name: 'Call' }).click()
    await page.getByTestId('value').waitFor({ timeout: 30_000 })
    assert.equal(await page.getByTestId('value').textContent(), JSON.stringify(`Hello, ${SECRET}!`))
    assert.match((await page.locator('pre.logs').textContent()) ?? '', /greeting 18 characters/)
    assert.match((await page.getByTestId('fuel').textContent()) ?? '', /^\d+$/)
    // signed by executors of the network, never the refusing node, and checked in this browser
    const signers = await page.getByTestId('receipts').locator('tbody tr td:first-child').allTextContents()
    assert.equal(signers.length, 2)
    const ids = new Set(devnet!.nodes.map((n) => n.peerId))
    for (const s of signers) assert.ok(ids.has(s), s)
    assert.ok(!signers.includes(devnet!.nodes[REFUSER].peerId))
    request = (await page.locator('.result dd.mono').first().textContent()) ?? ''
    recheckLink = (await page.getByTestId('recheck-link').getAttribute('href')) ?? ''
    assert.ok(recheckLink.startsWith(`${base}/#/verify/`), recheckLink)
    await shoot(page, 'playground')
    // an object comes back with its keys in the order the function wrote them
    await page.locator('select').selectOption('card')
    await page.locator('label:has-text("arguments") input').fill('["Ada"]')
    await page.getByRole('button', { name: 'Call' }).click()
    const card = { name: 'Ada', kind: 'greeting', at: 1 }
    await waitFor('the card', async () =>
      (await page.getByTestId('value').textContent()) === JSON.stringify(card, null, 2) ? true : undefined,
    )
    // the caller is this browser's own key, and it is kept for the next visit
    const caller = await page.getByTestId('caller').textContent()
    await page.reload()
    await waitFor('the kept key', async () =>
      (await page.getByTestId('caller').textContent()) === caller ? true : undefined,
    )
  })

  it('shows the call live on the calls page, with its certificate, and never its arguments or value', async () => {
    await page.goto(`${base}/#/calls`)
    // the gateway's row (an executor's run of the same request may end after the quorum, above it)
    const row = page.locator(`tr.call[data-request="${request}"]:has-text("gateway")`)
    await row.first().waitFor({ timeout: 20_000 })
    assert.match((await row.first().textContent()) ?? '', /gateway.*\.greet.*ok.*2 of 3/)
    // a call made now, from Node, appears without reloading
    const client = await connect({ node: base })
    const live = await client.invoke(fn, 'add', [40, 2], { replicas: 3, quorum: 2 })
    await page.locator(`tr.call[data-request="${live.certificate.id}"]`).first().waitFor({ timeout: 20_000 })
    await row.first().click()
    const details = page.locator('.details')
    await details.waitFor()
    const shown = await details.locator('table.receipts tbody tr').count()
    assert.equal(shown, 2)
    const text = (await page.locator('main').textContent()) ?? ''
    assert.ok(!text.includes(SECRET), 'the arguments are never shown')
    assert.ok(!text.includes('Hello,'), 'nor the value')
    // nor sent: the feed itself, read raw up to the second call
    const raw = await readUntil(`${base}/v1/calls?backlog=100`, live.certificate.id)
    assert.ok(raw.includes(request), 'the feed names the request')
    assert.ok(!raw.includes(SECRET) && !raw.includes('Hello,'), 'and holds neither arguments nor values')
    await shoot(page, 'calls')
  })

  it('shows what a holder stores and why, against its covenant’s limit', async () => {
    const client = await connect({ node: base })
    const holder = (await client.holders(fn))[0]
    const node = devnet!.nodes.find((n) => n.peerId === holder)!
    await page.goto(`${node.http}/#/storage`)
    const row = page.locator(`table.blocks tr[data-cid="${fn}"]`)
    await row.waitFor({ timeout: 20_000 })
    assert.match((await row.textContent()) ?? '', /holder \d of 3/)
    assert.match((await page.locator('main').textContent()) ?? '', /allowed by its covenant/)
    await shoot(page, 'storage')
  })

  it('re-checks the certificate from its link in another page, says what it trusts, and refuses a tampered one', async () => {
    const other = await browser!.context.newPage()
    await other.setViewportSize({ width: 1280, height: 860 })
    other.on('pageerror', (err) => pageErrors.push(err.message))
    /** Opens `link` and waits for the verdict of a check whose trust panel matches `trusted`. */
    const open = async (link: string, trusted: RegExp): Promise<string> => {
      await other.goto(link)
      await other.reload()
      await waitFor(`a verdict trusting ${trusted}`, async () =>
        trusted.test((await other.getByTestId('trusted').textContent()) ?? '') ? true : undefined,
      )
      return (await other.getByTestId('verdict').textContent()) ?? ''
    }
    try {
      // as the playground made it: the view from the serving node, the manifest in the link
      const verdict = await open(recheckLink, /With one node/)
      assert.match(verdict, /✓ The certificate verifies: 2 executors/)
      const main = (await other.locator('main').textContent()) ?? ''
      assert.match(main, new RegExp(`Hello, ${SECRET}!`))
      const trusted = (await other.getByTestId('trusted').textContent()) ?? ''
      assert.match(trusted, /a view of 5 peers/)
      assert.match(trusted, /With one node, this trusts that node to say who the executors are/)
      assert.match(trusted, /carried in the link, and taken because it hashes to the function’s CID/)
      assert.ok(trusted.includes(base), trusted)
      await shoot(other, 'verify')

      // a link that names more nodes: the view is theirs and the serving node's, by majority; and
      // one without the manifest: it is fetched from the serving node
      const nodes = [devnet!.nodes[1].http, devnet!.nodes[2].http]
      const wider = rewriteLink(recheckLink, (data) => {
        data.nodes = nodes
        delete data.manifest
      })
      assert.match(await open(wider, /3 nodes/), /✓ The certificate verifies/)
      const widerTrust = (await other.getByTestId('trusted').textContent()) ?? ''
      assert.match(widerTrust, /a majority of these nodes/)
      assert.match(widerTrust, /fetched from the node that served this page/)
      for (const url of [base, ...nodes]) assert.ok(widerTrust.includes(url), url)

      // the same certificate claimed for another value
      const tampered = rewriteLink(recheckLink, (data) => {
        ;(data.output as { json: string }).json = JSON.stringify('Hello, Mallory!')
      })
      assert.match(await open(tampered, /With one node/), /does not verify.*INVALID_CERTIFICATE/)
      assert.match((await other.locator('main').textContent()) ?? '', /value claimed/)
      // a manifest in the link that is not the function's (here: its code block) is not taken
      const client = await connect({ node: base })
      const codeBytes = await client.getBlock((await client.manifest(fn)).code)
      const forged = rewriteLink(recheckLink, (data) => {
        data.manifest = Buffer.from(codeBytes).toString('base64')
      })
      assert.match(
        await open(forged, /With one node/),
        /does not verify \(INVALID_CERTIFICATE\): the link's manifest does not hash to the function/,
      )
      await other.goto(`${base}/#/verify/not-a-certificate`)
      await other.reload()
      await other.locator('.error').waitFor()
    } finally {
      await other.close()
    }
    assert.deepEqual(pageErrors, [])
  })
})

/** `link` with its fragment data changed by `edit`, as its sender (or an attacker) could. */
function rewriteLink(link: string, edit: (data: Record<string, unknown>) => void): string {
  const [page, fragment] = link.split('#/verify/')
  const data = JSON.parse(inflateRawSync(Buffer.from(fragment, 'base64url')).toString('utf8'))
  edit(data)
  return `${page}#/verify/${deflateRawSync(Buffer.from(JSON.stringify(data))).toString('base64url')}`
}

/** What an event stream sends, as text, up to and including the first mention of `until`. */
async function readUntil(url: string, until: string): Promise<string> {
  const controller = new AbortController()
  const res = await fetch(url, { signal: AbortSignal.any([controller.signal, AbortSignal.timeout(20_000)]) })
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
  let text = ''
  try {
    while (!text.includes(until)) {
      const { value, done } = await reader.read()
      if (done) break
      text += value
    }
  } finally {
    controller.abort()
  }
  return text
}
