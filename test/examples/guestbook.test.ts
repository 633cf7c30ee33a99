/**
 * The guestbook (examples/guestbook) in headless Chromium, served by a node of a real 5-node
 * devnet as `npm start` serves it: a person signs it through the page (entries appear, the
 * function's checks and rate limit answer in the page), then an attacker at the page's console,
 * holding the page's own key and the SDK, tries every way around the function: a direct write with
 * the page's key, a replayed certificate, a modified copy of the function, forged receipts and
 * outputs, grinding requests for other executors, and certificates from executors outside the
 * write policy. Each is refused, and the guestbook holds exactly what the function wrote.
 */
import assert from 'node:assert/strict'
import { mkdir } from 'node:fs/promises'
import { after, before, describe, it } from 'node:test'
import type { Page } from 'playwright-core'
import {
  GUESTBOOK_DIST,
  type Guestbook,
  guestbookUrl,
  setUpGuestbook,
} from '../../examples/guestbook/setup.ts'
import { type CovenantClient, connect, generateKey } from '../../src/client/index.ts'
import { buildBrowserKit, type Chromium, launchChromium } from '../fixtures/browser.ts'
import { startTestDevnet, type TestDevnet, waitFor } from '../fixtures/network.ts'

const SHOTS = new URL('../../docs/screenshots/', import.meta.url).pathname

describe('the guestbook, in headless Chromium, on a 5-node devnet', { timeout: 300_000 }, () => {
  let devnet: TestDevnet | undefined
  let browser: Chromium | undefined
  let page: Page
  let net: CovenantClient
  let book: Guestbook
  let url: string
  const pageErrors: string[] = []

  /** Every entry, as a reader of the namespace sees it. */
  const entries = async () =>
    (await net.store(book.ns).list({ prefix: 'entries/' })).keys.map(
      (k) => k.value as { name: string; text: string },
    )

  /** Fills the form, submits, and waits for the page to say how it went. */
  const signAs = async (name: string, text: string) => {
    await page.fill('input[name=name]', name)
    await page.fill('textarea[name=text]', text)
    await page.click('button[type=submit]')
    await page.waitForSelector('#status[data-outcome="ok"], #status[data-outcome="bad"]', { timeout: 60_000 })
    const status = page.locator('#status')
    const outcome = {
      ok: (await status.getAttribute('data-outcome')) === 'ok',
      code: await status.getAttribute('data-code'),
      text: (await status.textContent()) ?? '',
    }
    // the next submit waits for a fresh status
    await page.evaluate(() => {
      const el = document.getElementById('status')!
      delete el.dataset.outcome
    })
    return outcome
  }

  before(async () => {
    const [d, b] = await Promise.allSettled([
      startTestDevnet({ nodes: 5, apps: { guestbook: GUESTBOOK_DIST } }),
      launchChromium(),
    ])
    if (d.status === 'fulfilled') devnet = d.value
    if (b.status === 'fulfilled') browser = b.value
    if (d.status === 'rejected') throw d.reason
    if (b.status === 'rejected') throw b.reason
    const nodes = devnet!.nodes.map((n) => n.http)
    net = await connect({ nodes })
    book = await setUpGuestbook(net, await generateKey())
    url = guestbookUrl(nodes[0], book, nodes)
    page = await browser!.context.newPage()
    await page.setViewportSize({ width: 900, height: 900 })
    page.on('pageerror', (err) => pageErrors.push(err.message))
  })
  after(async () => {
    await browser?.close()
    await devnet?.cleanup()
  })

  it('lets a person sign it: entries appear, and the function’s checks and rate limit answer in the page', async () => {
    await page.goto(url)
    await waitFor('the empty guestbook', async () =>
      (await page.textContent('#count')) === 'No' ? true : undefined,
    )
    const first = await signAs('Ada', 'Hello from a browser that cannot write.')
    assert.ok(first.ok, first.text)
    assert.match(first.text, /Signed as entry 1: certified by 2 of 3 executors, written by 3 holders/)
    const second = await signAs('Ada', 'A second line.\nWith a newline, <b>not bold</b>.')
    assert.ok(second.ok, second.text)
    await waitFor('two entries listed', async () =>
      (await page.locator('#entries li').count()) === 2 ? true : undefined,
    )
    // newest first, text shown as text
    assert.match((await page.locator('#entries li').first().textContent()) ?? '', /<b>not bold<\/b>/)
    assert.equal(await page.locator('#entries li b').count(), 0)
    assert.equal(await page.textContent('#count'), '2')
    // the function's own refusals, certified, shown with their code
    const blank = await signAs('   ', 'no name')
    assert.deepEqual([blank.ok, blank.code], [false, 'USER_ERROR'])
    assert.match(blank.text, /the name is empty/)
    const third = await signAs('Ada', 'Third within the minute.')
    assert.ok(third.ok, third.text)
    const fourth = await signAs('Ada', 'Fourth within the minute.')
    assert.deepEqual([fourth.ok, fourth.code], [false, 'USER_ERROR'])
    assert.match(fourth.text, /slow down/)
    await waitFor('three entries listed', async () =>
      (await page.locator('#entries li').count()) === 3 ? true : undefined,
    )
    assert.deepEqual(
      (await entries()).map((e) => e.text),
      [
        'Hello from a browser that cannot write.',
        'A second line.\nWith a newline, <b>not bold</b>.',
        'Third within the minute.',
      ],
    )
    await mkdir(SHOTS, { recursive: true })
    await page.screenshot({ path: `${SHOTS}guestbook.png`, fullPage: true })
    assert.deepEqual(pageErrors, [])
  })

  it('refuses an attacker at the page’s console, with the page’s key and the SDK, every way around the function', async () => {
    // the kit comes in as a script of the page's own origin: its policy runs no other code
    const kit = await buildBrowserKit()
    await page.route('**/apps/guestbook/kit.js', (route) =>
      route.fulfill({ body: kit, contentType: 'text/javascript; charset=utf-8' }),
    )
    await page.addScriptTag({ url: '/apps/guestbook/kit.js' })
    const nodes = devnet!.nodes.map((n) => n.http)
    const outcome = await page.evaluate(
      async ({ ns, fn, nodes }) => {
        // biome-ignore lint/suspicious/noExplicitAny: the kit is a global the test loaded
        const kit = (globalThis as any).kit
        const code = async (p: Promise<unknown>) =>
          p.then(
            () => 'applied',
            (e: { code?: string }) => e.code ?? String(e),
          )
        const net = await kit.connect({ nodes })
        const stored = localStorage.getItem('covenant-guestbook-key')!
        const pageKey = kit.decodeKey(Uint8Array.from(atob(stored), (c) => c.charCodeAt(0)))
        const book = net.store(ns)
        const snapshot = async () =>
          JSON.stringify([(await book.list({ prefix: '' })).keys, (await book.info()).head])
        const result: Record<string, unknown> = {}

        // a legitimate entry of the attacker's own, whose certificate it will try to reuse
        const own = await kit.generateKey()
        const legit = await net.invoke(fn, 'sign', [ns, 'Mallory', 'a fair entry'], {
          stores: [ns],
          key: own,
        })
        const before = await snapshot()

        // 1. write directly with the page's key (and with the attacker's)
        for (const [name, key] of [
          ['pageKey', pageKey],
          ['ownKey', own],
        ]) {
          const commit = await kit.createKeyCommit({
            issuer: key,
            ns,
            writes: [
              {
                key: 'entries/00000099',
                value: { n: 99, name: 'Mallory', text: 'direct', author: '', at: 0 },
              },
            ],
          })
          result[`direct-${name}`] = await code(book.send(commit))
        }

        // 2. replay the certificate: the same commit again, and its writes under another run
        const effects = legit.output.store[0]
        const again = kit.createFunctionCommit({
          request: legit.certificate.id,
          effects,
          certificate: legit.certificate,
          output: legit.output,
        })
        result.replay = await book
          .send(again)
          .then((r: { duplicate: boolean }) => (r.duplicate ? 'duplicate' : 'applied'))

        // 3. a modified copy of the function: its checks taken out
        const info = await net.getFunction(fn)
        const source = new TextDecoder().decode(await net.getBlock(info.manifest.code))
        const modified = source.replace('if (inWindow.length >= RATE_COUNT)', 'if (false)')
        result.modifiedDiffers = modified !== source
        const copy = await net.deploy(modified, { key: own, exports: ['sign'] })
        result.modified = await code(
          net.invoke(copy.cid, 'sign', [ns, 'Mallory', 'spam'], { stores: [ns], key: own }),
        )

        // 4. forge: the legit output with another text, under its receipts, re-hashed, or re-signed by itself
        const forged = structuredClone(legit.output)
        const entry = forged.store[0].writes.find((w: { key: string }) => w.key.startsWith('entries/'))
        entry.value.text = 'forged'
        forged.json = JSON.stringify(entry.value)
        const fresh = await net
          .invoke(fn, 'sign', [ns, 'Mallory', 'unapplied'], {
            stores: [ns],
            key: own,
            reads: { [ns]: 0 },
          })
          .catch((e: { details: { certificate: unknown; output: unknown } }) => e.details)
        const certificate = kit.certificateFromJSON(fresh.certificate)
        const hash = kit.outputHash(forged)
        const send = (c: unknown, o: { store: unknown[] }) =>
          code(
            book.send(
              kit.createFunctionCommit({
                request: certificate.id,
                effects: o.store[0],
                certificate: c,
                output: o,
              }),
            ),
          )
        result.forgedOutput = await send(certificate, forged)
        result.forgedHash = await send(
          {
            ...certificate,
            outputHash: hash,
            receipts: certificate.receipts.map((r: object) => ({ ...r, outputHash: hash })),
          },
          forged,
        )

        // 5. grind: other nonces, arguments and times never move the executors; a ticket not worked for is refused
        const view = await net.view()
        const manifest = await net.manifest(fn)
        const selections = new Set<string>()
        for (let i = 0; i < 40; i++) {
          const { request } = kit.createRequest(
            own,
            { fn, export: 'sign', args: [ns, `try ${i}`, 'x'], reads: { [ns]: i } },
            Date.now() + i,
          )
          selections.add(kit.selectExecutors({ view, request, manifest }).ordered.slice(0, 3).join(','))
        }
        result.selections = selections.size
        // a request signed by hand with a ticket nobody worked for (the SDK refuses to make one)
        const { request: honest } = kit.createRequest(own, { fn, export: 'sign', args: [ns, 'x', 'x'] })
        const worked = (nonce: number) => {
          try {
            kit.checkTicket(honest.caller, { epoch: honest.ticket.epoch, nonce }, honest.timestamp)
            return true
          } catch {
            return false
          }
        }
        let nonce = honest.ticket.nonce + 1
        while (worked(nonce)) nonce++
        const { signature: _, ...body } = { ...honest, ticket: { epoch: honest.ticket.epoch, nonce } }
        const cheap = { ...body, signature: kit.signValue(own, body) }
        const answer = await fetch(`${nodes[0]}/v1/invoke`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ request: kit.requestToJSON(cheap) }),
        })
        result.cheapTicket = (await answer.json()).error?.code

        // 6. certifiers outside the policy: one receipt, two executors, the attacker's own keys
        result.oneReceipt = await code(
          net.invoke(fn, 'sign', [ns, 'Mallory', 'q=1'], {
            stores: [ns],
            key: own,
            quorum: 1,
            trust: { minQuorum: 1 },
          }),
        )
        result.twoExecutors = await code(
          net.invoke(fn, 'sign', [ns, 'Mallory', 'k=2'], { stores: [ns], key: own, replicas: 2, quorum: 2 }),
        )
        const strangers = await Promise.all([kit.generateKey(), kit.generateKey()])
        const strangerReceipts = strangers.map((k: unknown) =>
          kit.signReceipt(k, {
            request: certificate.id,
            outputHash: hash,
            fuel: 1,
            covenantVersion: 1,
            build: 'ab'.repeat(32),
          }),
        )
        result.strangers = await send(
          { ...certificate, outputHash: hash, receipts: strangerReceipts },
          forged,
        )

        result.unchanged = (await snapshot()) === before
        return result
      },
      { ns: book.ns, fn: book.fn, nodes },
    )
    assert.deepEqual(outcome, {
      'direct-pageKey': 'GRANT_MISSING',
      'direct-ownKey': 'GRANT_MISSING',
      replay: 'duplicate',
      modifiedDiffers: true,
      modified: 'GRANT_MISSING',
      forgedOutput: 'INVALID_CERTIFICATE',
      forgedHash: 'INVALID_CERTIFICATE',
      selections: 1,
      cheapTicket: 'INVALID_REQUEST',
      oneReceipt: 'WRITE_POLICY_UNMET',
      twoExecutors: 'WRITE_POLICY_UNMET',
      strangers: 'INVALID_CERTIFICATE',
      unchanged: true,
    })
    // the guestbook holds what the function wrote: the person's three entries and the attacker's fair one
    assert.deepEqual(
      (await entries()).map((e) => `${e.name}: ${e.text}`),
      [
        'Ada: Hello from a browser that cannot write.',
        'Ada: A second line.\nWith a newline, <b>not bold</b>.',
        'Ada: Third within the minute.',
        'Mallory: a fair entry',
      ],
    )
    assert.deepEqual(pageErrors, [])
  })
})
