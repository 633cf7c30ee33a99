/**
 * `covenant demo`, what `npm start` runs: a real 5-node network, the example deployed, fetched
 * back and called through a quorum, the guestbook set up and signed; with --exit it stops the
 * network itself.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { covenant } from '../../fixtures/cli.ts'
import { freeBasePort } from '../../fixtures/network.ts'

describe('covenant demo (npm start)', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'covenant-demo-'))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('starts a network, deploys, fetches and calls the example through a quorum, sets up the guestbook, then stops', async () => {
    const { stdout } = await covenant(
      ['demo', '--exit', '--dir', join(dir, 'devnet'), '--base-port', String(await freeBasePort(10))],
      { env: { ...process.env, COVENANT_HOME: join(dir, 'home') }, timeout: 120_000 },
    )
    assert.equal(stdout.match(/^ {3}node \d {2}12D3KooW\w+ {2}http:\/\/127\.0\.0\.1:\d+$/gm)?.length, 5)
    assert.match(stdout, /render\(…\) → "<h1>Covenant<\/h1>/)
    assert.match(stdout, /code held by 3\/3 nodes/)
    assert.match(stdout, /fetched back from node \d, which does not hold it: \d+ bytes, hash checked/)
    assert.match(stdout, /value {2}"<h1>Covenant<\/h1>\\n<p>Code that <em>no single machine<\/em>/)
    assert.equal(stdout.match(/^ {3}signed by 12D3KooW…\w+ {2}fuel \d+ {2}covenant v1$/gm)?.length, 2)
    // the caller is funded by the faucet, and each executor of the certificate charges it
    assert.match(stdout, /caller funded by the devnet faucet: 0\.5 cr from 5 nodes/)
    assert.equal(
      stdout.match(/^ {3}charged 0\.\d+ cr by 12D3KooW…\w+ \(its price × fuel \d+\), paid by cheque$/gm)
        ?.length,
      2,
    )
    // the guestbook: set up, signed once by its function, and its page's address
    assert.match(stdout, /signed once: certified by 2 executors, applied on 3 holders as entry \d+/)
    assert.match(
      stdout,
      /^Guestbook: http:\/\/127\.0\.0\.1:\d+\/apps\/guestbook\/#ns=bafyrei\w+&fn=bafyrei\w+&nodes=(http:\/\/127\.0\.0\.1:\d+,){4}http:\/\/127\.0\.0\.1:\d+$/m,
    )
    assert.match(stdout, /network stopped\n$/)
    // stopped cleanly: devnet.json is removed, the node data stays for the next run
    const left = await readdir(join(dir, 'devnet'))
    assert.ok(!left.includes('devnet.json'))
    assert.ok(left.includes('node-0'))
  })
})
