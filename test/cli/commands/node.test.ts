/** `covenant node start`: fault injection is refused outside a devnet, before anything starts. */
import assert from 'node:assert/strict'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { covenant } from '../../fixtures/cli.ts'

describe('covenant node start --fault', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'covenant-node-cli-'))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  for (const [how, args, env] of [
    ['--fault', ['--fault', 'wrong-result'], {}],
    ['COVENANT_FAULT', [], { COVENANT_FAULT: 'crash' }],
  ] as const) {
    it(`refuses ${how} without --devnet with FAULT_REFUSED`, async () => {
      const data = join(dir, how)
      await assert.rejects(
        covenant(['node', 'start', '--data', data, ...args], {
          env: { ...process.env, ...env },
          timeout: 30_000,
        }),
        (e: { code: number; stdout: string; stderr: string }) => {
          assert.equal(e.code, 1)
          assert.equal(e.stdout, '')
          assert.match(e.stderr, /error FAULT_REFUSED: .*only allowed in a devnet/)
          return true
        },
      )
      // refused before the node touched its data directory
      await assert.rejects(readdir(data), { code: 'ENOENT' })
    })
  }

  it('refuses a devnet node that would listen beyond loopback', async () => {
    const data = join(dir, 'public')
    await assert.rejects(
      covenant(
        ['node', 'start', '--data', data, '--devnet', '--fault', 'slow', '--listen', '/ip4/0.0.0.0/tcp/0'],
        { timeout: 30_000 },
      ),
      (e: { code: number; stderr: string }) => {
        assert.equal(e.code, 1)
        assert.match(e.stderr, /error FAULT_REFUSED: a devnet node listens on loopback addresses only/)
        return true
      },
    )
    await assert.rejects(readdir(data), { code: 'ENOENT' })
  })
})
