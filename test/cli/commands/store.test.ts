/**
 * `covenant store …` as a user runs it, against one real in-process node: create, put, get, list,
 * history, grant, revoke, a grant kept for a function, a vouch, and `covenant call --store` writing
 * through the function; each with `--json` printing exactly one object, and the typed refusals a
 * careless user meets.
 */
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { DEVNET_COVENANT } from '../../../src/devnet/index.ts'
import { keyId, loadOrCreateKey } from '../../../src/keys/index.ts'
import { type CovenantNode, createNode } from '../../../src/node/index.ts'
import { covenant } from '../../fixtures/cli.ts'

describe('covenant store', () => {
  let dir: string
  let node: CovenantNode
  let ownerKey: string
  let editorKey: string

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'covenant-store-cli-'))
    // it executes too: the function a namespace grants runs here
    node = await createNode({
      dataDir: join(dir, 'node'),
      defaultMetrics: false,
      logLevel: 'silent',
      covenant: DEVNET_COVENANT,
    })
    ownerKey = join(dir, 'owner.key')
    editorKey = join(dir, 'editor.key')
  })
  after(async () => {
    await node?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  /** Runs `covenant store …`; resolves with the one JSON object it printed, whatever its exit code. */
  const store = async (args: string[], key = ownerKey): Promise<Record<string, unknown>> => {
    const run = covenant(['store', ...args, '--node', node.url, '--key', key, '--json']).catch(
      (err: { stdout: string }) => err,
    )
    const { stdout } = await run
    const lines = stdout.trim().split('\n')
    assert.equal(lines.length, 1, `one JSON object: ${stdout}`)
    return JSON.parse(lines[0])
  }
  const codeOf = (out: Record<string, unknown>) => (out.error as { code?: string } | undefined)?.code

  it('creates a namespace, writes keys under the versions read, and reads them at any version', async () => {
    const created = await store(['create', 'notes', '--public'])
    assert.equal(created.ok, true)
    const ns = created.ns as string
    assert.deepEqual(created.holders, [node.peerId])
    const first = await store(['put', ns, 'title', '"Notes"', '--set', 'count=0', '--set', 'tags=["a"]'])
    assert.equal(first.ok, true)
    assert.equal(first.seq, 1)
    const second = await store(['put', ns, 'count', '1', '--read', 'count@1'])
    assert.equal(second.seq, 2)
    // a write that read an old version is refused, and nothing changes
    const stale = await store(['put', ns, 'count', '5', '--read', 'count@1'])
    assert.equal(stale.ok, false)
    assert.equal(codeOf(stale), 'WRITE_CONFLICT')
    assert.deepEqual(await store(['get', ns, 'count']), {
      ok: true,
      ns,
      key: 'count',
      value: 1,
      version: 2,
      at: 2,
    })
    assert.equal((await store(['get', ns, 'count', '--at', '1'])).value, 0)
    assert.equal((await store(['get', ns, 'missing'])).value, null)
    const listed = await store(['list', ns, '--prefix', 't'])
    assert.deepEqual(
      (listed.keys as Array<{ key: string; value: unknown }>).map((k) => [k.key, k.value]),
      [
        ['tags', ['a']],
        ['title', 'Notes'],
      ],
    )
    const history = await store(['history', ns])
    assert.deepEqual(
      (history.entries as Array<{ seq: number }>).map((e) => e.seq),
      [1, 2],
    )
    const versions = await store(['history', ns, 'count'])
    assert.deepEqual(
      (versions.versions as Array<{ value: unknown }>).map((v) => v.value),
      [1, 0],
    )
    const deleted = await store(['put', ns, '--delete', 'tags'])
    assert.equal(deleted.ok, true)
    assert.equal((await store(['get', ns, 'tags'])).value, null)
    // without --json, a value is printed for a person
    const { stdout } = await covenant(['store', 'get', ns, 'title', '--node', node.url])
    assert.equal(stdout, 'Notes\n')
  })

  it('grants a key a prefix, takes its writes there only, and revokes the grant', async () => {
    const ns = (await store(['create', 'team', '--public'])).ns as string
    const editor = (await covenant(['keys', '--key', editorKey, '--json'])).stdout
    const editorId = JSON.parse(editor).id as string
    const grantFile = join(dir, 'editor.grant.json')
    const granted = await store([
      'grant',
      ns,
      editorId,
      '--prefix',
      'pages/',
      '--expires',
      '1h',
      '--out',
      grantFile,
    ])
    assert.equal(granted.ok, true)
    assert.deepEqual(JSON.parse(await readFile(grantFile, 'utf8')), granted.grant)
    const put = await store(['put', ns, 'pages/home', '"<h1>"', '--grant', grantFile], editorKey)
    assert.equal(put.ok, true)
    assert.equal(
      codeOf(await store(['put', ns, 'title', '"x"', '--grant', grantFile], editorKey)),
      'GRANT_WIDENED',
    )
    assert.equal(codeOf(await store(['put', ns, 'pages/x', '1'], editorKey)), 'GRANT_MISSING')
    const revoked = await store(['revoke', ns, '--grant', grantFile])
    assert.equal(revoked.ok, true)
    assert.equal(
      codeOf(await store(['put', ns, 'pages/home', '"<h2>"', '--grant', grantFile], editorKey)),
      'GRANT_REVOKED',
    )
    assert.equal((await store(['get', ns, 'pages/home'])).value, '<h1>')
  })

  it('keeps a grant for a function and vouches for its executor; a call naming the store writes through it', async () => {
    const file = join(dir, 'bump.js')
    await writeFile(
      file,
      "export async function bump(ns, ctx) { const n = (await ctx.store.get(ns, 'n')) ?? 0; ctx.store.put(ns, 'n', n + 1); return n + 1 }\n",
    )
    const deployed = await covenant(['deploy', file, '--node', node.url, '--key', ownerKey, '--json'])
    const fn = JSON.parse(deployed.stdout).cid as string
    const owner = keyId(await loadOrCreateKey(ownerKey))
    const created = await store([
      'create',
      'counter',
      '--public',
      '--min-replicas',
      '1',
      '--min-quorum',
      '1',
      '--vouched-by',
      owner,
    ])
    const ns = created.ns as string
    const kept = await store(['grant', ns, `fn:${fn}`, '--prefix', 'n', '--keep'])
    assert.equal((kept.kept as { seq: number }).seq, 1)
    const call = async (...extra: string[]) => {
      const run = covenant([
        'call',
        fn,
        'bump',
        ns,
        '--node',
        node.url,
        '--key',
        editorKey,
        '--replicas',
        '1',
        '--quorum',
        '1',
        '--min-quorum',
        '1',
        '--json',
        ...extra,
      ]).catch((err: { stdout: string }) => err)
      return JSON.parse((await run).stdout) as Record<string, unknown>
    }
    // nobody vouched for this node yet: certified, not written
    assert.equal(codeOf(await call('--store', ns)), 'WRITE_POLICY_UNMET')
    const vouched = await store(['vouch', ns, node.peerId, '--expires', '1h'])
    assert.equal(vouched.seq, 2)
    const first = await call('--store', ns)
    assert.equal(first.value, 1)
    assert.deepEqual(
      (first.commits as Array<{ seq: number }>).map((c) => c.seq),
      [3],
    )
    assert.equal((await call('--store', ns)).value, 2)
    assert.equal((await store(['get', ns, 'n'])).value, 2)
    // a call that does not name the store it reads is the function's failure, certified
    assert.equal(codeOf(await call()), 'STORE_NOT_FIXED')
  })

  it('reads a private namespace only with its owner’s key', async () => {
    const ns = (await store(['create', 'diary'])).ns as string
    await store(['put', ns, 'day', '"rain"'])
    assert.equal((await store(['get', ns, 'day'])).value, 'rain')
    assert.equal(codeOf(await store(['get', ns, 'day'], editorKey)), 'READ_REFUSED')
  })

  it('refuses what a careless user types, with a typed error and a failing exit code', async () => {
    const ns = (await store(['create', 'careless', '--public'])).ns as string
    const cases: Array<Promise<void>> = []
    for (const [args, code] of [
      [['put', ns, '--read', 'count'], 'INVALID_INPUT'],
      [['put', ns, 'k', '1', '--read', 'k@x'], 'INVALID_INPUT'],
      [['put', ns], 'INVALID_INPUT'],
      [['put', ns, 'k'], 'INVALID_INPUT'],
      [['put', ns, 'k', '1', '--grant', join(dir, 'nowhere.json')], 'INVALID_INPUT'],
      [['grant', ns, 'not-a-key-id'], 'INVALID_INPUT'],
      [['grant', ns, 'fn:not-a-cid'], 'INVALID_INPUT'],
      [['grant', ns, 'x', '--expires', '3 weeks'], 'INVALID_INPUT'],
      [['get', 'not-a-namespace', 'k'], 'INVALID_INPUT'],
      [['get', ns, 'k', '--at', '99'], 'INVALID_INPUT'],
      [['revoke', ns, '--grant', join(dir, 'owner.key')], 'GRANT_MALFORMED'],
    ] as const)
      cases.push(
        store([...args]).then((out) => {
          assert.equal(out.ok, false, args.join(' '))
          assert.equal(codeOf(out), code, args.join(' '))
        }),
      )
    await Promise.all(cases)
    await assert.rejects(
      covenant(['store', 'get', ns, 'k', '--at', '99', '--node', node.url]),
      (err: { code: number; stderr: string }) => err.code === 1 && /INVALID_INPUT/.test(err.stderr),
    )
  })
})
