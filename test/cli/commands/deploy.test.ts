/**
 * `covenant deploy`, `get`, `peers` and `call` as processes against a real in-process node (which,
 * under the default covenant, executes nothing): what a newcomer types, and the errors they meet.
 */
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

  it('deploys the same file to the same CID, and gets a function’s code in one command', async () => {
    const deploy = async () =>
      JSON.parse((await cli(['deploy', 'examples/hello.ts', '--node', node.url, '--json'])).stdout)
    const first = await deploy()
    const again = await deploy()
    assert.equal(again.cid, first.cid)
    const out = join(dir, 'fn.js')
    const { stderr } = await cli(['get', first.cid, '--code', '--out', out, '--node', node.url])
    assert.match(stderr, /wrote \d+ bytes/)
    assert.match(await readFile(out, 'utf8'), /function greet/)
    assert.match((await cli(['get', first.cid, '--code', '--node', node.url])).stdout, /function greet/)
    // a manifest shown points at the one command that gets its code
    assert.match((await cli(['get', first.cid, '--node', node.url])).stderr, /--code/)
    await assert.rejects(cli(['get', first.codeCid, '--code', '--node', node.url]), (e: { stderr: string }) =>
      /error INVALID_INPUT: .* is not a function's manifest/.test(e.stderr),
    )
  })

  it('refuses an argument that looks like JSON but does not parse, before asking any node', async () => {
    await assert.rejects(
      cli(['call', 'bafyreiabc', 'greet', '{"name": "Ada"', '--node', 'http://127.0.0.1:1']),
      (e: { stderr: string; code: number }) => {
        assert.equal(e.code, 1)
        assert.match(e.stderr, /error INVALID_INPUT: argument 1 is not JSON: "\{\\"name\\": \\"Ada\\"" /)
        assert.match(e.stderr, /hint: /)
        return true
      },
    )
    for (const bad of ['hello world', '[1, 2', "'single'", '12abc'])
      await assert.rejects(
        cli(['sandbox', 'examples/hello.ts', 'greet', bad]),
        (e: { stderr: string }) => /error INVALID_INPUT: argument 1 is not JSON/.test(e.stderr),
        bad,
      )
    // a bare word is the string it spells, as before
    assert.match((await cli(['sandbox', 'examples/hello.ts', 'greet', 'Ada'])).stdout, /^Hello, Ada!/)
  })

  it('says which nodes were left out and why, and names the real exports', async () => {
    const { cid } = JSON.parse(
      (await cli(['deploy', 'examples/hello.ts', '--node', node.url, '--json'])).stdout,
    )
    await assert.rejects(cli(['call', cid, 'greet', 'Ada', '--node', node.url]), (e: { stderr: string }) => {
      assert.match(e.stderr, /error NO_EXECUTORS: /)
      assert.match(e.stderr, new RegExp(`nodes left out:\n    ${node.peerId}: .*execut`))
      assert.match(e.stderr, /hint: /)
      return true
    })
    await assert.rejects(cli(['call', cid, 'greeet', 'Ada', '--node', node.url]), (e: { stderr: string }) => {
      assert.match(e.stderr, /error NO_SUCH_EXPORT: the function does not export "greeet"; it exports greet/)
      assert.match(e.stderr, /hint: .*covenant get/)
      return true
    })
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
