/**
 * The dashboard is built ahead and committed (src/web/dist): rebuilt here in memory, it must be
 * byte for byte what is committed, so a change to the app without `npm run build:web` fails.
 */
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { buildGuestbook, GUESTBOOK_DIST } from '../../examples/guestbook/build.ts'
import { buildDashboard, DASHBOARD_DIST, DASHBOARD_PAGE, loadDashboard } from '../../src/web/index.ts'

describe('the dashboard build', () => {
  for (const [what, build, dist] of [
    ['the dashboard (src/web/app)', buildDashboard, DASHBOARD_DIST],
    ['the guestbook’s page (examples/guestbook/page)', buildGuestbook, GUESTBOOK_DIST],
  ] as const)
    it(`is committed as it builds now: ${what} (run \`npm run build:web\` after changing it)`, async () => {
      const built = await build()
      const committed = (await readdir(dist)).sort()
      assert.deepEqual(committed, [...built.keys()].sort(), `the files in ${dist}`)
      for (const [name, body] of built)
        assert.ok(Buffer.from(body).equals(await readFile(join(dist, name))), `${name} is stale`)
    })

  it('is one page, one script and one stylesheet, small, with hashed names and no Node import', async () => {
    const assets = loadDashboard()
    assert.deepEqual([...assets.values()].map((a) => a.type).sort(), [
      'text/css; charset=utf-8',
      'text/html; charset=utf-8',
      'text/javascript; charset=utf-8',
    ])
    const page = assets.get(DASHBOARD_PAGE)!.body.toString()
    for (const [name, asset] of assets) {
      if (name === DASHBOARD_PAGE) continue
      assert.match(name, /^[a-z]+-[A-Z0-9]{8}\.(js|css)$/)
      assert.ok(page.includes(`/ui/${name}`), `the page loads ${name}`)
      assert.ok(asset.immutable)
    }
    const script = [...assets].find(([n]) => n.endsWith('.js'))![1].body
    assert.ok(script.length < 600 * 1024, `the script is ${script.length} bytes`)
    assert.doesNotMatch(script.toString(), /["'`]node:[\w/]+["'`]/)
    // nothing is fetched from elsewhere: every URL the page names is its own
    assert.doesNotMatch(page, /https?:\/\//)
  })
})
