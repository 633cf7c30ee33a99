/**
 * Capabilities in a real browser: src/caps bundled for browsers with no Node built-in left (its
 * UCAN library and its multiformats included), then run by headless Chromium, where a page issues
 * a grant that Node accepts and checks grants that Node issued, forged ones refused.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { build } from 'esbuild'
import type { Page } from 'playwright-core'
import * as caps from '../../src/caps/index.ts'
import { generateKey, keyId, type PrivateKey } from '../../src/keys/index.ts'
import {
  type Chromium,
  launchChromium,
  nodeImportsIn,
  type StaticSite,
  serveStatic,
} from '../fixtures/browser.ts'
import { testFunction, testNamespace } from './craft.ts'

type Caps = typeof caps & { generateKey: typeof generateKey; keyId: typeof keyId }

const ENTRY = `export * from './src/caps/index.ts'\nexport { generateKey, keyId } from './src/keys/index.ts'\n`

async function bundle(): Promise<string> {
  const result = await build({
    stdin: { contents: ENTRY, resolveDir: new URL('../..', import.meta.url).pathname, loader: 'ts' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    write: false,
    logLevel: 'silent',
    external: ['node:*'],
  })
  return result.outputFiles[0].text
}

const ns = testNamespace('browser site')
const fn = testFunction('browser function')
const NOW = 1_800_000_000_000

describe('capabilities in a browser', () => {
  let code: string
  let browser: Chromium | undefined
  let site: StaticSite | undefined
  let page: Page
  let owner: PrivateKey
  const pageErrors: string[] = []

  before(async () => {
    ;[code, browser, owner] = await Promise.all([bundle(), launchChromium(), generateKey()])
    site = await serveStatic({
      '/': {
        type: 'text/html; charset=utf-8',
        body: '<!doctype html><script type="module">import * as caps from "./caps.js"; window.caps = caps</script>',
      },
      '/caps.js': { type: 'text/javascript; charset=utf-8', body: code },
    })
    page = await browser.context.newPage()
    page.on('pageerror', (err) => pageErrors.push(err.message))
    await page.goto(`${site.origin}/`)
    await page.waitForFunction(() => 'caps' in window, undefined, { timeout: 10_000 })
  })
  after(async () => {
    await browser?.close()
    await site?.close()
  })

  it('bundles with no Node built-in', () => {
    assert.deepEqual(nodeImportsIn(code), [])
    assert.match(code, /\bverifyGrant\b/)
  })

  it('issues a grant Node accepts, and checks Node’s grants, refusing forged ones', async () => {
    const grant = await caps.delegateWrite({
      issuer: owner,
      audience: { fn },
      namespace: ns,
      prefix: 'p/',
      expiresAt: NOW + 60_000,
    })
    const forged = new Uint8Array(grant.chain[0])
    forged[20] ^= 1
    const got = await page.evaluate(
      async ({ ns, fn, owner, chain, forged, now }) => {
        const c = (window as unknown as { caps: Caps }).caps
        const codeOf = (check: () => unknown) => {
          try {
            check()
            return 'accepted'
          } catch (err) {
            return (err as { code?: string }).code ?? String(err)
          }
        }
        const ctx = { namespace: ns, owner, writer: { fn }, now }
        const key = await c.generateKey()
        const mine = await c.delegateWrite({
          issuer: key,
          audience: { fn },
          namespace: ns,
          expiresAt: now + 60_000,
        })
        return {
          nodes: codeOf(() => c.verifyGrant([new Uint8Array(chain)], ctx)),
          forged: codeOf(() => c.verifyGrant([new Uint8Array(forged)], ctx)),
          expired: codeOf(() => c.verifyGrant([new Uint8Array(chain)], { ...ctx, now: now + 60_000 })),
          issuer: c.keyId(key),
          mine: { cid: mine.cid, chain: mine.chain.map((b) => Array.from(b)) },
        }
      },
      {
        ns,
        fn,
        owner: keyId(owner),
        chain: Array.from(grant.chain[0]),
        forged: Array.from(forged),
        now: NOW,
      },
    )
    assert.deepEqual([got.nodes, got.forged, got.expired], ['accepted', 'GRANT_FORGED', 'GRANT_EXPIRED'])
    const chain = got.mine.chain.map((b) => new Uint8Array(b))
    const verified = caps.verifyGrant(chain, { namespace: ns, owner: got.issuer, writer: { fn }, now: NOW })
    assert.equal(verified.cid, got.mine.cid)
    assert.deepEqual(pageErrors, [])
  })
})
