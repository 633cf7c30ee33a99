/**
 * The SDK's two shorter routes to a certified call, on a real local network of five node
 * processes: `direct` (the Node SDK runs the quorum protocol itself, over libp2p) and
 * `executingGateway` (each call goes over HTTP to a node that the selection picks to execute it).
 * Each gives the value a quorum certified, checked here against the client's own view; neither
 * takes anything on trust: a wrong-result executor ranked first is outvoted and its receipt ends
 * up as evidence on the nodes, and an executing gateway that tampers with its answer is refused.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type CovenantClient, connect, loadCallerKey } from '../../src/client/index.ts'
import { CovenantError } from '../../src/errors/index.ts'
import { FORGED_VALUE } from '../../src/exec/index.ts'
import type { PrivateKey } from '../../src/keys/index.ts'
import { ticketWhere } from '../fixtures/exec-cluster.ts'
import { startTestDevnet, type TestDevnet, waitFor } from '../fixtures/network.ts'

const LIAR = 4
const SOURCE = `export function add(a, b) { return { sum: a + b } }`

interface Posted {
  url: string
  path: string
}

describe('the SDK’s direct and executing-gateway routes', { timeout: 300_000 }, () => {
  let devnet: TestDevnet
  let key: PrivateKey
  let cid: string
  const posted: Posted[] = []
  const realFetch = globalThis.fetch
  /** rewrites the JSON answer of a POST to this path prefix, when set */
  let tamper: { prefix: string; edit: (body: Record<string, unknown>) => unknown } | undefined
  const clients: CovenantClient[] = []

  before(async () => {
    devnet = await startTestDevnet({ nodes: 5, faults: { [LIAR]: 'wrong-result' } })
    globalThis.fetch = async (input, init) => {
      const url = String(input instanceof Request ? input.url : input)
      const res = await realFetch(input, init)
      if (init?.method !== 'POST') return res
      const { origin, pathname } = new URL(url)
      posted.push({ url: origin, path: pathname })
      if (tamper === undefined || !url.startsWith(tamper.prefix)) return res
      const body = (await res.json()) as Record<string, unknown>
      return new Response(JSON.stringify(tamper.edit(body)), { status: res.status, headers: res.headers })
    }
    key = await loadCallerKey(`${devnet.dir}/caller.key`)
    const deployer = await connect({ devnetDir: devnet.dir })
    ;({ cid } = await deployer.deploy(SOURCE, { key, exports: ['add'] }))
    await devnet.waitConnected()
  })
  after(async () => {
    globalThis.fetch = realFetch
    for (const c of clients) await c.close()
    await devnet?.cleanup()
  })

  const open = async (options: { direct?: boolean; executingGateway?: boolean }) => {
    const client = await connect({ devnetDir: devnet.dir, trust: { minQuorum: 1 }, ...options })
    clients.push(client)
    return client
  }

  it('direct: certified at k = 3, q = 2 without the gateway; the liar ranked first is outvoted and reported', async () => {
    const client = await open({ direct: true })
    const view = await client.view()
    const manifest = await client.manifest(cid)
    const liar = devnet.nodes[LIAR].peerId
    const limits = { fn: cid, export: 'add', k: 3, fuel: 2000, memoryMiB: 64, timeoutMs: 5000 }
    const ticket = ticketWhere(key, view, limits, manifest, (ordered) => ordered[0] === liar)
    posted.length = 0
    const result = await client.invoke(cid, 'add', [2, 3], { replicas: 3, quorum: 2, key, ticket })
    assert.deepEqual(result.value, { sum: 5 })
    assert.equal(result.certificate.receipts.length, 2)
    assert.ok(result.certificate.receipts.every((r) => r.executor !== liar))
    assert.ok(result.tried.some((a) => a.peer === liar))
    // the executors were called from here: no node was asked to invoke
    assert.deepEqual(
      posted.filter((p) => p.path === '/v1/invoke'),
      [],
    )
    assert.equal((await client.verify(result.certificate, { output: result.output })).ok, true)
    // The liar's receipt, whether it came before the quorum or after, is evidence the SDK sent to
    // the view's live peers; each checks it against its own view, and keeps it.
    const kept = await waitFor(
      'the liar’s conflict on a node',
      async () => {
        for (const node of devnet.nodes) {
          const res = await realFetch(`${node.http}/v1/conflicts?executor=${liar}`)
          const { conflicts } = (await res.json()) as {
            conflicts: Array<{ conflict: { receipt: { request: string } } }>
          }
          const found = conflicts.find((c) => c.conflict.receipt.request === result.certificate.id)
          if (found !== undefined) return found
        }
        return undefined
      },
      120_000,
    )
    assert.equal(kept.conflict.receipt.request, result.certificate.id)
  })

  it('executingGateway: a k = 1 call goes to the node that runs it, which makes no hop; its tampered answer is refused', async () => {
    const client = await open({ executingGateway: true })
    const view = await client.view()
    const manifest = await client.manifest(cid)
    const chosen = devnet.nodes[2]
    const limits = { fn: cid, export: 'add', k: 1, fuel: 2000, memoryMiB: 64, timeoutMs: 5000 }
    const ticket = ticketWhere(key, view, limits, manifest, (ordered) => ordered[0] === chosen.peerId)
    const call = () => client.invoke(cid, 'add', [20, 22], { replicas: 1, quorum: 1, key, ticket })

    posted.length = 0
    const result = await call()
    assert.deepEqual(result.value, { sum: 42 })
    assert.deepEqual(
      posted.filter((p) => p.path === '/v1/invoke').map((p) => p.url),
      [new URL(chosen.http).origin],
    )
    assert.deepEqual(
      result.tried.map((a) => [a.peer, a.outcome]),
      [[chosen.peerId, 'agreed']],
    )
    assert.deepEqual(
      result.certificate.receipts.map((r) => r.executor),
      [chosen.peerId],
    )

    // The node chosen is still only a gateway to the client: a value it changes, or a certificate
    // it swaps, does not verify.
    tamper = {
      prefix: `${new URL(chosen.http).origin}/v1/invoke`,
      edit: (body) => ({
        ...body,
        value: FORGED_VALUE,
        output: { ...(body.output as object), json: JSON.stringify(FORGED_VALUE) },
      }),
    }
    try {
      await assert.rejects(
        call(),
        (e: unknown) => e instanceof CovenantError && e.code === 'INVALID_CERTIFICATE',
      )
    } finally {
      tamper = undefined
    }

    // Without the option, the same call goes to the client's own node, which asks the executor.
    const plain = await open({})
    posted.length = 0
    const again = await plain.invoke(cid, 'add', [20, 22], { replicas: 1, quorum: 1, key, ticket })
    assert.deepEqual(again.value, { sum: 42 })
    assert.deepEqual(
      posted.filter((p) => p.path === '/v1/invoke').map((p) => p.url),
      [new URL(devnet.nodes[0].http).origin],
    )
  })
})
