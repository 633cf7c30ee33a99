/**
 * A devnet's ports, as a newcomer meets them: a busy one is named with what to do, and a base
 * port kept from the last run is said, not used silently. `node start` on a busy port alike.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { basePortLine } from '../../../src/cli/commands/devnet.ts'
import { startDevnet } from '../../../src/devnet/index.ts'
import { covenant } from '../../fixtures/cli.ts'
import { FAST_INTERVALS, freeBasePort } from '../../fixtures/network.ts'

describe('devnet ports', { timeout: 120_000 }, () => {
  let dir: string
  let base: number
  let squatter: Server
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'covenant-ports-'))
    base = await freeBasePort(4)
    // something else holds node 0's HTTP port
    squatter = createServer()
    await new Promise<void>((res) => squatter.listen(base + 1, '127.0.0.1', res))
  })
  after(async () => {
    await new Promise((res) => squatter.close(res))
    await rm(dir, { recursive: true, force: true })
  })

  it('names a busy port and says to pass --base-port, before starting any node', async () => {
    await assert.rejects(
      covenant(['devnet', '--dir', join(dir, 'a'), '--nodes', '2', '--base-port', String(base)]),
      (e: { stderr: string; code: number }) => {
        assert.equal(e.code, 1)
        assert.match(
          e.stderr,
          new RegExp(
            `error PORT_IN_USE: port ${base + 1} \\(node 0's HTTP port, from base port ${base}\\) is in use`,
          ),
        )
        assert.match(e.stderr, /pass --base-port/)
        assert.match(e.stderr, /hint: .*--base-port/)
        assert.doesNotMatch(e.stderr, /NODE_UNREACHABLE/)
        return true
      },
    )
  })

  it('a node started on a busy HTTP port says which', async () => {
    await assert.rejects(
      covenant(['node', 'start', '--data', join(dir, 'node'), '--http', String(base + 1)]),
      (e: { stderr: string; code: number }) => {
        assert.equal(e.code, 1)
        assert.match(
          e.stderr,
          new RegExp(`error PORT_IN_USE: HTTP port ${base + 1} on 127\\.0\\.0\\.1 is in use`),
        )
        assert.match(e.stderr, /hint: .*--http/)
        return true
      },
    )
  })

  it('says when it reuses the base port of the last run in its directory', async () => {
    const other = await freeBasePort(2)
    const layout = { dir: join(dir, 'b'), nodes: 1, ...FAST_INTERVALS }
    const first = await startDevnet({ ...layout, basePort: other })
    await first.stop()
    assert.equal(first.basePortFrom, 'option')
    assert.match(basePortLine(first), new RegExp(`^ports ${other}–${other + 1} \\(as asked\\)$`))
    const second = await startDevnet(layout)
    try {
      assert.equal(second.basePort, other)
      assert.equal(second.basePortFrom, 'last-run')
      assert.match(basePortLine(second), /the base port of the last run in .*; --base-port changes it/)
      assert.equal(second.nodes[0].http, `http://127.0.0.1:${other + 1}`)
    } finally {
      await second.stop()
    }
  })
})
