/**
 * The SDK in a real browser: bundled for browsers with no Node built-in left, then loaded by
 * headless Chromium from a page on another origin than the node, where it makes a caller key,
 * builds its view of a real 3-node devnet from the node URLs it is given, invokes a function and
 * checks the quorum certificate itself.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Page } from 'playwright-core'
import * as sdk from '../../src/client/index.ts'
import {
  buildBrowserBundle,
  type Chromium,
  launchChromium,
  nodeImportsIn,
  type StaticSite,
  serveStatic,
} from '../fixtures/browser.ts'
import { startTestDevnet, type TestDevnet } from '../fixtures/network.ts'

type Sdk = typeof sdk

const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>Covenant SDK</title>
<script type="module">
  import * as covenant from './covenant.js'
  window.covenant = covenant
</script>
`

const SOURCE = 'export function add(a, b) { return a + b }\n'

/** Settles every start; throws the first failure once all are done, so `after` sees them all. */
async function allStarted(starts: Promise<unknown>[]): Promise<void> {
  const failed = (await Promise.allSettled(starts)).find((r) => r.status === 'rejected')
  if (failed !== undefined) throw failed.reason
}

describe('the SDK in a browser', () => {
  it('bundles for browsers with no node: import and no require of a Node built-in', async () => {
    const { code, exports } = await buildBrowserBundle()
    assert.deepEqual(nodeImportsIn(code), [])
    // the browser gets exactly the SDK's exports, not names that merely appear in its text
    assert.deepEqual(exports, Object.keys(sdk).sort())
    for (const name of ['connect', 'generateKey', 'verifyCertificate', 'CovenantClient'])
      assert.ok(exports.includes(name), `the bundle exports ${name}`)
    // the checker itself sees both forms
    assert.deepEqual(nodeImportsIn('import "node:fs"; const os = require("os"); require("zod")'), [
      'node:fs',
      'require(os)',
    ])
  })

  describe('in headless Chromium, against a 3-node devnet', () => {
    let devnet: TestDevnet | undefined
    let site: StaticSite | undefined
    let browser: Chromium | undefined
    let page: Page
    let nodes: string[]
    let fn: string
    const pageErrors: string[] = []

    before(async () => {
      let bundle = ''
      await allStarted([
        startTestDevnet({ nodes: 3 }).then((d) => {
          devnet = d
        }),
        launchChromium().then((c) => {
          browser = c
        }),
        buildBrowserBundle().then((b) => {
          bundle = b.code
        }),
      ])
      const publisher = await sdk.generateKey()
      const deployed = await (await sdk.connect({ node: devnet!.nodes[0].http })).deploy(SOURCE, {
        key: publisher,
        name: 'add',
      })
      fn = deployed.cid
      // the browser's gateway is another node than the one deployed to: it must find the code on
      // the network; its view comes from all three
      nodes = [1, 0, 2].map((i) => devnet!.nodes[i].http)
      site = await serveStatic({
        '/': { type: 'text/html; charset=utf-8', body: PAGE },
        '/covenant.js': { type: 'text/javascript; charset=utf-8', body: bundle },
      })
      page = await browser!.context.newPage()
      page.on('pageerror', (err) => pageErrors.push(err.message))
      await page.goto(`${site.origin}/`)
      await page.waitForFunction(() => 'covenant' in window, undefined, { timeout: 10_000 })
    })
    after(async () => {
      await browser?.close()
      await site?.close()
      await devnet?.cleanup()
    })

    it('makes a key, builds its view from the nodes, invokes over CORS and verifies the certificate in the page', async () => {
      const gateway = nodes[0]
      assert.notEqual(new URL(site!.origin).origin, new URL(gateway).origin, 'the page is cross-origin')
      const invokeResponse = page.waitForResponse((r) => r.url() === `${gateway}/v1/invoke`)
      const peersAsked = nodes.map((n) => page.waitForResponse((r) => r.url() === `${n}/v1/peers`))
      const got = await page.evaluate(
        async ({ nodes, fn }) => {
          const covenant = (window as unknown as { covenant: Sdk }).covenant
          const key = await covenant.generateKey()
          const client = await covenant.connect({ nodes })
          const result = await client.invoke(fn, 'add', [2, 40], { key, replicas: 3, quorum: 2 })
          const verified = await client.verify(result.certificate, { output: result.output })
          // by hand, with the view and manifest the client used
          const view = await client.view()
          const manifest = await client.manifest(fn)
          const again = covenant.verifyCertificate(result.certificate, {
            view,
            manifest,
            output: result.output,
          })
          return {
            value: result.value,
            verified: verified.ok && again.ok,
            verifiedValue: verified.value,
            viewSize: view.peers.size,
            caller: covenant.keyId(key),
            certificate: covenant.certificateToJSON(result.certificate),
            output: result.output,
          }
        },
        { nodes, fn },
      )
      assert.equal(got.value, 42)
      assert.equal(got.verified, true)
      assert.equal(got.verifiedValue, 42)
      assert.equal(got.viewSize, 3)
      for (const asked of peersAsked) assert.equal((await asked).status(), 200)
      // signed with the key made in the page, and a certificate Node checks as well
      assert.equal(got.certificate.request.caller, got.caller)
      assert.equal(got.certificate.request.fn, fn)
      const cert = sdk.certificateFromJSON(got.certificate)
      assert.ok(cert.receipts.length >= 2)
      const inNode = await sdk.connect({ nodes })
      assert.equal((await inNode.verify(cert, { output: got.output })).value, 42)

      const response = await invokeResponse
      assert.equal(response.status(), 200)
      assert.equal((await response.allHeaders())['access-control-allow-origin'], '*')
      assert.equal((await response.request().allHeaders()).origin, site!.origin)
      assert.deepEqual(pageErrors, [])
    })

    it('rejects tampered certificates in the page', async () => {
      const codes = await page.evaluate(
        async ({ nodes, fn }) => {
          const covenant = (window as unknown as { covenant: Sdk }).covenant
          const key = await covenant.generateKey()
          const client = await covenant.connect({ nodes })
          const { certificate, output } = await client.invoke(fn, 'add', [1, 2], { key })
          const view = await client.view()
          const manifest = await client.manifest(fn)
          const codeOf = (check: () => unknown): string => {
            try {
              check()
              return 'accepted'
            } catch (err) {
              return (err as { code?: string }).code ?? String(err)
            }
          }
          const verify = (c: unknown, o?: typeof output) =>
            covenant.verifyCertificate(c, { view, manifest, output: o })
          const json = covenant.certificateToJSON(certificate)
          return {
            honest: codeOf(() => verify(certificate, output)),
            otherValue: codeOf(() => verify(certificate, { ...output, json: '4' })),
            otherArgs: codeOf(() =>
              verify(covenant.certificateFromJSON({ ...json, request: { ...json.request, args: [2, 2] } })),
            ),
            otherFuel: codeOf(() =>
              verify({
                ...certificate,
                receipts: certificate.receipts.map((r, i) => (i === 0 ? { ...r, fuel: r.fuel + 1 } : r)),
              }),
            ),
            tooFewReceipts: codeOf(() =>
              verify({ ...certificate, receipts: certificate.receipts.slice(0, 1) }),
            ),
            noView: codeOf(() =>
              covenant.verifyCertificate(certificate, { view: covenant.createView([]), manifest }),
            ),
          }
        },
        { nodes, fn },
      )
      assert.deepEqual(codes, {
        honest: 'accepted',
        otherValue: 'INVALID_CERTIFICATE',
        otherArgs: 'INVALID_CERTIFICATE',
        otherFuel: 'INVALID_CERTIFICATE',
        tooFewReceipts: 'INVALID_CERTIFICATE',
        noView: 'INVALID_CERTIFICATE',
      })
    })

    it('asks for what a browser lacks: node URLs and a key', async () => {
      const codes = await page.evaluate(
        async ({ nodes, fn }) => {
          const covenant = (window as unknown as { covenant: Sdk }).covenant
          const codeOf = async (run: () => Promise<unknown>): Promise<string> =>
            run().then(
              () => 'resolved',
              (err) => (err as { code?: string }).code ?? String(err),
            )
          return {
            noNode: await codeOf(() => covenant.connect()),
            noKey: await codeOf(async () => (await covenant.connect({ nodes })).invoke(fn, 'add', [1, 1])),
          }
        },
        { nodes, fn },
      )
      assert.deepEqual(codes, { noNode: 'NODE_UNREACHABLE', noKey: 'INVALID_INPUT' })
      assert.deepEqual(pageErrors, [])
    })
  })
})
