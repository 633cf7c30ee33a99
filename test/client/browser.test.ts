/**
 * The SDK in a real browser: bundled for browsers with no Node built-in left, then loaded by
 * headless Chromium from a page on another origin than the node, where it makes a caller key,
 * invokes a function on a real 3-node devnet and checks the quorum certificate itself.
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
    let node: string
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
      // the browser asks another node than the one deployed to: it must find the code on the network
      node = devnet!.nodes[1].http
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

    it('makes a key, invokes over CORS and verifies the certificate in the page', async () => {
      assert.notEqual(new URL(site!.origin).origin, new URL(node).origin, 'the page is cross-origin')
      const invokeResponse = page.waitForResponse((r) => r.url() === `${node}/v1/invoke`)
      const got = await page.evaluate(
        async ({ node, fn }) => {
          const covenant = (window as unknown as { covenant: Sdk }).covenant
          const key = await covenant.generateKey()
          const client = await covenant.connect({ node })
          const result = await client.invoke(fn, 'add', [2, 40], { key, replicas: 3, quorum: 2 })
          const verified = covenant.verifyCertificate(result.certificate, { output: result.output })
          return {
            value: result.value,
            verified: verified.ok,
            verifiedValue: verified.value,
            caller: covenant.keyId(key),
            certificate: covenant.certificateToJSON(result.certificate),
            output: result.output,
          }
        },
        { node, fn },
      )
      assert.equal(got.value, 42)
      assert.equal(got.verified, true)
      assert.equal(got.verifiedValue, 42)
      // signed with the key made in the page, and a certificate Node checks as well
      assert.equal(got.certificate.request.caller, got.caller)
      assert.equal(got.certificate.request.fn, fn)
      const cert = sdk.certificateFromJSON(got.certificate)
      assert.ok(cert.receipts.length >= 2)
      assert.equal(sdk.verifyCertificate(cert, { output: got.output }).value, 42)

      const response = await invokeResponse
      assert.equal(response.status(), 200)
      assert.equal((await response.allHeaders())['access-control-allow-origin'], '*')
      assert.equal((await response.request().allHeaders()).origin, site!.origin)
      assert.deepEqual(pageErrors, [])
    })

    it('rejects tampered certificates in the page', async () => {
      const codes = await page.evaluate(
        async ({ node, fn }) => {
          const covenant = (window as unknown as { covenant: Sdk }).covenant
          const key = await covenant.generateKey()
          const client = await covenant.connect({ node })
          const { certificate, output } = await client.invoke(fn, 'add', [1, 2], { key })
          const codeOf = (check: () => unknown): string => {
            try {
              check()
              return 'accepted'
            } catch (err) {
              return (err as { code?: string }).code ?? String(err)
            }
          }
          const json = covenant.certificateToJSON(certificate)
          return {
            honest: codeOf(() => covenant.verifyCertificate(certificate, { output })),
            otherValue: codeOf(() =>
              covenant.verifyCertificate(certificate, { output: { ...output, value: 4 } }),
            ),
            otherArgs: codeOf(() =>
              covenant.verifyCertificate(
                covenant.certificateFromJSON({ ...json, request: { ...json.request, args: [2, 2] } }),
              ),
            ),
            otherFuel: codeOf(() =>
              covenant.verifyCertificate({
                ...certificate,
                receipts: certificate.receipts.map((r, i) => (i === 0 ? { ...r, fuel: r.fuel + 1 } : r)),
              }),
            ),
            tooFewReceipts: codeOf(() =>
              covenant.verifyCertificate({ ...certificate, receipts: certificate.receipts.slice(0, 1) }),
            ),
          }
        },
        { node, fn },
      )
      assert.deepEqual(codes, {
        honest: 'accepted',
        otherValue: 'INVALID_CERTIFICATE',
        otherArgs: 'INVALID_CERTIFICATE',
        otherFuel: 'INVALID_CERTIFICATE',
        tooFewReceipts: 'INVALID_CERTIFICATE',
      })
    })

    it('asks for what a browser lacks: a node URL and a key', async () => {
      const codes = await page.evaluate(
        async ({ node, fn }) => {
          const covenant = (window as unknown as { covenant: Sdk }).covenant
          const codeOf = async (run: () => Promise<unknown>): Promise<string> =>
            run().then(
              () => 'resolved',
              (err) => (err as { code?: string }).code ?? String(err),
            )
          return {
            noNode: await codeOf(() => covenant.connect()),
            noKey: await codeOf(async () => (await covenant.connect({ node })).invoke(fn, 'add', [1, 1])),
          }
        },
        { node, fn },
      )
      assert.deepEqual(codes, { noNode: 'NODE_UNREACHABLE', noKey: 'INVALID_INPUT' })
      assert.deepEqual(pageErrors, [])
    })
  })
})
