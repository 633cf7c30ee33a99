/**
 * The dashboard as a person uses it, in headless Chromium against a real 5-node devnet in which
 * one node refuses to run functions tagged `demo`: the network with its five peers and the
 * refusing one marked, a function deployed and called from the playground, the call appearing
 * live with its certificate (and never its arguments), storage with why each block is held, and
 * the re-check link verifying in another page (and failing when tampered with). Each page is
 * saved as a screenshot under docs/screenshots/.
 */
import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
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
    assert.deepEqual(await page.locator('select option').allTextContents(), ['add', 'greet'])
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
    // the caller is this browser's own key, and it is kept for the next visit
    const caller = await page.getByTestId('caller').textContent()
    await page.reload()
    await waitFor('the kept key', async () =>
      (await page.getByTestId('caller').textContent()) === caller ? true : undefined,
    )
  })

  it('shows the call live on the calls page, with its certificate, and never its arguments or value', async () => {
    await page.goto(`${base}/#/calls`)
    const row = page.locator(`tr.call[data-request="${request}"]`)
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

  it('re-checks the certificate from its link in another page, and refuses a tampered one', async () => {
    const other = await browser!.context.newPage()
    await other.setViewportSize({ width: 1280, height: 860 })
    try {
      await other.goto(recheckLink)
      const verdict = other.getByTestId('verdict')
      await verdict.waitFor({ timeout: 20_000 })
      assert.match((await verdict.textContent()) ?? '', /✓ The certificate verifies: 2 executors/)
      assert.match((await other.locator('main').textContent()) ?? '', new RegExp(`Hello, ${SECRET}!`))
      await shoot(other, 'verify')

      // the same certificate claimed for another value
      const tampered = await other.evaluate(async (link) => {
        const data = link.split('#/verify/')[1]
        const bytes = Uint8Array.from(atob(data.replaceAll('-', '+').replaceAll('_', '/')), (c) =>
          c.charCodeAt(0),
        )
        const inflated = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('deflate-raw'))
        const json = JSON.parse(await new Response(inflated).text())
        json.output.value = 'Hello, Mallory!'
        const deflated = new Blob([JSON.stringify(json)])
          .stream()
          .pipeThrough(new CompressionStream('deflate-raw'))
        const out = new Uint8Array(await new Response(deflated).arrayBuffer())
        let text = ''
        for (const b of out) text += String.fromCharCode(b)
        return `${link.split('#')[0]}#/verify/${btoa(text).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')}`
      }, recheckLink)
      await other.goto(tampered)
      await other.reload()
      await waitFor('the tampered verdict', async () =>
        /does not verify/.test((await other.getByTestId('verdict').textContent()) ?? '') ? true : undefined,
      )
      assert.match((await other.getByTestId('verdict').textContent()) ?? '', /INVALID_CERTIFICATE/)
      await other.goto(`${base}/#/verify/not-a-certificate`)
      await other.locator('.error').waitFor()
    } finally {
      await other.close()
    }
    assert.deepEqual(pageErrors, [])
  })
})

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
