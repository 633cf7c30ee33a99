/** `covenant deploy`, `get` and `peers` as processes against a real in-process node. */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { type CovenantNode, createNode } from '../../../src/node/index.ts'
import { covenant } from '../../fixtures/cli.ts'

describe('covenant deploy / get / peers', () => {
  let dir: string
  let node: CovenantNode
  const cli = (args: string[]) =>
    covenant([...args], { env: { ...process.env, COVENANT_HOME: join(dir, 'home') } })

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'covenant-cli-'))
    node = await createNode({ dataDir: join(dir, 'node'), defaultMetrics: false, logLevel: 'silent' })
  })
  after(async () => {
    await node?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('deploys a file, fetches its code and lists peers', async () => {
    const { stdout } = await cli([
      'deploy',
      'examples/hello.ts',
      '--tag',
      'demo',
      '--node',
      node.url,
      '--json',
    ])
    const deployed = JSON.parse(stdout)
    assert.equal(deployed.ok, true)
    assert.deepEqual(deployed.exports, ['greet'])
    assert.deepEqual(deployed.holders, [node.peerId])
    const out = join(dir, 'code.js')
    await cli(['get', deployed.codeCid, '--out', out, '--node', node.url])
    assert.match(await readFile(out, 'utf8'), /function greet/)
    // a manifest is shown decoded, not as raw CBOR
    const manifest = JSON.parse((await cli(['get', deployed.cid, '--node', node.url])).stdout)
    assert.equal(manifest.code, deployed.codeCid)
    assert.deepEqual(manifest.exports, ['greet'])
    assert.deepEqual(manifest.tags, ['demo'])
    const peers = JSON.parse((await cli(['peers', '--json', '--node', node.url])).stdout)
    assert.equal(peers.peers[0].id, node.peerId)
  })

  it('prints the error code and hint when no node answers', async () => {
    await assert.rejects(
      cli(['peers', '--node', 'http://127.0.0.1:1']),
      (e: { stderr: string; code: number }) => {
        assert.equal(e.code, 1)
        assert.match(e.stderr, /error NODE_UNREACHABLE/)
        assert.match(e.stderr, /hint: /)
        return true
      },
    )
  })
})
