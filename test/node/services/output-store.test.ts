/**
 * A 10 MiB result on a real local network of five node processes: certified at k = 3, q = 2 by
 * executors that store it in the content network and sign its reference, never shipping it; read
 * once by the caller, every block checked against its CID and the whole against the certificate.
 * The caller's own gateway is a liar that also executes: it signs the right output, then serves
 * every chunk it is asked for with a byte changed (the `wrong-blocks` fault); the caller catches
 * each lie by its hash and reads the chunk from another node. In a second identical call the
 * executors find every block held and send none again.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import { type CovenantClient, connect, loadCallerKey } from '../../../src/client/index.ts'
import { parseCid } from '../../../src/content/index.ts'
import { CovenantConfigSchema } from '../../../src/covenant/index.ts'
import { DEVNET_COVENANT } from '../../../src/devnet/index.ts'
import { OUTPUT_CHUNK_BYTES } from '../../../src/exec/index.ts'
import type { PrivateKey } from '../../../src/keys/index.ts'
import { ticketWhere } from '../../fixtures/exec-cluster.ts'
import { startTestDevnet, type TestDevnet, waitFor } from '../../fixtures/network.ts'

const LIAR = 0
const SOURCE = `
export function big(rows) {
  const out = []
  for (let i = 0; i < rows; i++) out.push(i + ':' + 'abcdefghij'.repeat(400))
  return out
}
`
/** 2700 rows of about 4 KiB: a little over 10 MiB of JSON text. */
const ROWS = 2700
const expected = Array.from({ length: ROWS }, (_, i) => `${i}:${'abcdefghij'.repeat(400)}`)

interface Fetched {
  url: string
  method: string
  status: number
  bytes: number
}

describe('a 10 MiB result, certified by reference and read once', { timeout: 600_000 }, () => {
  let devnet: TestDevnet
  let client: CovenantClient
  let key: PrivateKey
  let cid: string
  const fetched: Fetched[] = []
  const realFetch = globalThis.fetch

  before(async () => {
    // Executors that allow the time and memory a 10 MiB value takes to build on a loaded machine.
    const covenant = CovenantConfigSchema.parse({
      ...DEVNET_COVENANT,
      execute: { ...DEVNET_COVENANT.execute, maxWallClockMs: 30_000, maxMemoryMiB: 128 },
    })
    devnet = await startTestDevnet({
      nodes: 5,
      covenants: Object.fromEntries([0, 1, 2, 3, 4].map((i) => [i, covenant])),
      faults: { [LIAR]: 'wrong-blocks' },
    })
    // Every request the caller makes, as it makes it (the responses pass through untouched).
    globalThis.fetch = async (input, init) => {
      const res = await realFetch(input, init)
      const url = String(input instanceof Request ? input.url : input)
      const bytes = Number(res.headers.get('content-length') ?? Number.NaN)
      fetched.push({ url, method: init?.method ?? 'GET', status: res.status, bytes })
      return res
    }
    // The liar is the gateway; the view comes from all five nodes.
    client = await connect({ node: devnet.nodes[LIAR].http, devnetDir: devnet.dir })
    key = await loadCallerKey(`${devnet.dir}/caller.key`)
    ;({ cid } = await client.deploy(SOURCE, { key, exports: ['big'] }))
  })
  after(async () => {
    globalThis.fetch = realFetch
    await devnet?.cleanup()
  })

  /** one metric's value on one node */
  async function metric(http: string, pattern: RegExp): Promise<number> {
    const text = await (await realFetch(`${http}/metrics`)).text()
    return Number(pattern.exec(text)?.[1] ?? 0)
  }

  /** copies of output blocks the executors sent to holders, and found held already, from their metrics */
  async function copies(): Promise<{ sent: number; held: number }> {
    const total = { sent: 0, held: 0 }
    for (const node of devnet.nodes) {
      total.sent += await metric(node.http, /^covenant_exec_output_copies_total\{copies="sent"\} (\d+)/m)
      total.held += await metric(node.http, /^covenant_exec_output_copies_total\{copies="held"\} (\d+)/m)
    }
    return total
  }

  /** waits until each executor of `tried` has run `n` requests */
  async function ranAll(tried: ReadonlyArray<{ peer: string }>, n: number): Promise<void> {
    for (const { peer } of tried) {
      const node = devnet.nodes.find((x) => x.peerId === peer)!
      await waitFor(
        `${peer} to have run ${n} requests`,
        async () =>
          (await metric(node.http, /^covenant_executor_requests\{answer="executed"\} (\d+)/m)) >= n
            ? true
            : undefined,
        120_000,
      )
    }
  }

  it('is certified at k = 3, q = 2 with the liar among its signers, read once, and the liar’s chunks are caught', async () => {
    await devnet.waitConnected()
    const view = await client.view()
    const manifest = await client.manifest(cid)
    const limits = {
      fn: cid,
      export: 'big',
      k: 3,
      fuel: 200_000,
      memoryMiB: 128,
      timeoutMs: 30_000,
      outputMiB: 16,
    }
    // the liar ranks first: it executes, and its receipt is one of the two the certificate keeps
    const liar = devnet.nodes[LIAR].peerId
    const ticket = ticketWhere(key, view, limits, manifest, (ordered) => ordered[0] === liar)
    const invoke = () =>
      client.invoke(cid, 'big', [ROWS], {
        replicas: 3,
        quorum: 2,
        fuel: limits.fuel,
        memoryMiB: limits.memoryMiB,
        timeoutMs: limits.timeoutMs,
        outputMiB: limits.outputMiB,
        key,
        ticket,
        // every executor ranked ahead of the signers must account for itself: the liar signs
        trust: { maxUnprovenSkips: 0 },
      })

    // from here on, what the call itself fetches (the manifest above was read through blocks too)
    fetched.length = 0
    const result = await invoke()
    assert.deepEqual(result.value, expected)
    // certified: two receipts, the liar's among them, over the reference to the stored text
    assert.equal(result.certificate.receipts.length, 2)
    assert.ok(
      result.certificate.receipts.some((r) => r.executor === liar),
      JSON.stringify(result.tried),
    )
    assert.equal(result.output.json, undefined)
    const ref = result.output.ref!
    const text = JSON.stringify(expected)
    assert.equal(ref.bytes, Buffer.byteLength(text))
    assert.ok(ref.bytes > 10 * 1024 * 1024)
    // the gateway's answer carried a reference, not 10 MiB
    const answer = fetched.find((f) => f.method === 'POST' && f.url.endsWith('/v1/invoke'))!
    assert.ok(answer.bytes < 64 * 1024, `the gateway answered ${answer.bytes} bytes`)

    // Read once: each block taken from exactly one honest node; every copy the liar sent of a
    // chunk was refused by its hash, and the reading went on elsewhere.
    const gets = fetched.filter((f) => f.method === 'GET' && /\/v1\/blocks\/[a-z0-9]+$/.test(f.url))
    const chunkCount = Math.ceil(ref.bytes / OUTPUT_CHUNK_BYTES)
    const blocksRead = new Set(gets.map((g) => g.url.split('/').pop()!))
    assert.ok(blocksRead.has(ref.cid))
    // the root and every chunk, and nothing else
    assert.equal(blocksRead.size, chunkCount + 1)
    const liarUrl = devnet.nodes[LIAR].http
    for (const block of blocksRead) {
      const raw = parseCid(block).code === 0x55
      const honest = gets.filter((g) => g.url.endsWith(block) && !g.url.startsWith(liarUrl))
      const fromLiar = gets.filter((g) => g.url.endsWith(block) && g.url.startsWith(liarUrl))
      // the liar, asked first (it is the gateway), lies about every chunk and tells the truth
      // about the root (a dag-cbor block): one good copy read per block, never two
      if (raw) {
        assert.equal(fromLiar.length, 1, `the liar was asked once for ${block}`)
        assert.equal(honest.length, 1, `one honest copy of ${block}`)
      } else {
        assert.equal(fromLiar.length, 1)
        assert.equal(honest.length, 0)
      }
    }

    // k holders of each block, as for any block
    for (const block of blocksRead) assert.equal((await client.holders(block)).length, 3)

    // Each executor stored it before it signed: every block went to its holders once (a holder
    // asked by a later executor had it already, unless two asked at the same moment).
    await ranAll(result.tried, 1)
    const first = await copies()
    assert.ok(first.sent >= blocksRead.size * 3, JSON.stringify(first))

    // The same call again (a new request): the executors find every block held and send nothing.
    fetched.length = 0
    const again = await invoke()
    assert.deepEqual(again.output.ref, ref)
    assert.deepEqual(again.value, expected)
    await ranAll(again.tried, 2)
    const second = await copies()
    assert.equal(second.sent, first.sent)
    assert.ok(second.held - first.held >= 2 * blocksRead.size, JSON.stringify(second))
  })
})
