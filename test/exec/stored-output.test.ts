/**
 * Outputs stored in the content network (src/exec/stored-output.ts): the same text gives the same
 * blocks and hash everywhere, a reader gets the text back only as certified, and every way a
 * source can lie about it is caught. Then the executor's side: a call asking for a larger output
 * tier stores it through its node and signs the reference; one not allowed to is refused.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import { type CID, cidForBytes, type Manifest } from '../../src/content/index.ts'
import { CovenantError } from '../../src/errors/index.ts'
import {
  createExecutor,
  createRequest,
  type ExecReply,
  INLINE_OUTPUT_BYTES,
  invoke,
  isStored,
  OUTPUT_CHUNK_BYTES,
  type OutputBlock,
  OutputSchema,
  outputHash,
  readStoredOutput,
  storedOutput,
  verifyCertificate,
  verifyReceipt,
} from '../../src/exec/index.ts'
import { generateKey, type PrivateKey } from '../../src/keys/index.ts'
import { createSandbox, type Sandbox } from '../../src/sandbox/index.ts'
import { BlockMap, executingCovenant, makeNodes, type TestNode, viewOf } from '../fixtures/exec-cluster.ts'

const MiB = 1024 * 1024

/** A JSON text of about `mib` MiB with multi-byte characters across every chunk boundary. */
function bigText(mib: number): string {
  const items: string[] = []
  for (let i = 0; items.length * 48 < mib * MiB; i++) items.push(`item ${i}: été ✓ 𝄞 ${'x'.repeat(24)}`)
  return JSON.stringify(items)
}

/** A block source from stored blocks, as a content network would hand them out. */
function sourceOf(blocks: OutputBlock[]): Map<string, Uint8Array> {
  return new Map(blocks.map((b) => [b.cid.toString(), b.bytes]))
}

const rejectsWith = (code: string) => (e: unknown) => {
  assert.ok(e instanceof CovenantError, String(e))
  assert.equal(e.code, code, e.message)
  return true
}

describe('stored outputs', () => {
  const text = bigText(10)

  it('stores a text longer than a reply carries as chunks and a root, the same on every executor', () => {
    assert.equal(isStored('x'.repeat(INLINE_OUTPUT_BYTES - 2)), false)
    assert.equal(isStored(JSON.stringify('x'.repeat(INLINE_OUTPUT_BYTES - 2))), false)
    assert.equal(isStored(JSON.stringify('x'.repeat(INLINE_OUTPUT_BYTES - 1))), true)
    // one multi-byte character makes the same length of UTF-16 longer in UTF-8
    assert.equal(isStored(JSON.stringify(`é${'x'.repeat(INLINE_OUTPUT_BYTES - 3)}`)), true)
    const a = storedOutput(text)
    const b = storedOutput(text)
    assert.deepEqual(a.ref, b.ref)
    assert.equal(a.ref.bytes, new TextEncoder().encode(text).byteLength)
    const chunks = a.blocks.slice(0, -1)
    assert.equal(chunks.length, Math.ceil(a.ref.bytes / OUTPUT_CHUNK_BYTES))
    for (const c of chunks) assert.ok(c.bytes.byteLength <= OUTPUT_CHUNK_BYTES && c.codec === 'raw')
    const root = a.blocks.at(-1)!
    assert.equal(root.cid.toString(), a.ref.cid)
    assert.deepEqual(dagCbor.decode(root.bytes), {
      v: 1,
      bytes: a.ref.bytes,
      chunks: chunks.map((c) => c.cid),
    })
    // the output names the root; its hash is that of { ref, logs, error }
    const output = { ref: a.ref, logs: ['made it'], error: null }
    assert.equal(OutputSchema.safeParse(output).success, true)
    assert.equal(outputHash(output), outputHash({ ...output, ref: { ...b.ref } }))
    assert.notEqual(outputHash(output), outputHash({ ...output, ref: { ...a.ref, bytes: a.ref.bytes - 1 } }))
  })

  it('has exactly one of json and ref', () => {
    const { ref } = storedOutput(text)
    assert.equal(OutputSchema.safeParse({ json: '1', ref, logs: [], error: null }).success, false)
    assert.equal(OutputSchema.safeParse({ logs: [], error: null }).success, false)
    assert.equal(OutputSchema.safeParse({ json: '1', logs: [], error: null }).success, true)
  })

  it('reads the text back, every block checked', async () => {
    const { ref, blocks } = storedOutput(text)
    const source = sourceOf(blocks)
    const asked: string[] = []
    const back = await readStoredOutput(ref, async (cid) => {
      asked.push(cid.toString())
      return source.get(cid.toString())!
    })
    assert.equal(back, text)
    // each block once
    assert.deepEqual(asked.sort(), [...source.keys()].sort())
  })

  it('catches every lie about it: a changed chunk, a root for other bytes, a short chunk, a text that is not UTF-8', async () => {
    const { ref, blocks } = storedOutput(text)
    const source = sourceOf(blocks)
    const chunk = blocks[3].cid.toString()
    const changed = Uint8Array.from(source.get(chunk)!)
    changed[0] ^= 1
    await assert.rejects(
      readStoredOutput(ref, async (cid) =>
        cid.toString() === chunk ? changed : source.get(cid.toString())!,
      ),
      rejectsWith('HASH_MISMATCH'),
    )
    // A root that is itself well formed but describes other content does not match the reference.
    const lies: Array<{ root: unknown; extra?: Array<[CID, Uint8Array]> }> = []
    const chunks = blocks.slice(0, -1).map((b) => b.cid)
    lies.push({ root: { v: 1, bytes: ref.bytes + 1, chunks } })
    lies.push({ root: { v: 1, bytes: ref.bytes, chunks: chunks.slice(1) } })
    const short = new Uint8Array(10)
    lies.push({
      root: { v: 1, bytes: ref.bytes, chunks: [cidForBytes(short), ...chunks.slice(1)] },
      extra: [[cidForBytes(short), short]],
    })
    const manifestLike = dagCbor.encode({ not: 'a chunk' })
    lies.push({
      root: { v: 1, bytes: ref.bytes, chunks: [cidForBytes(manifestLike, 'dag-cbor'), ...chunks.slice(1)] },
      extra: [[cidForBytes(manifestLike, 'dag-cbor'), manifestLike]],
    })
    lies.push({ root: { v: 2, bytes: ref.bytes, chunks } })
    for (const lie of lies) {
      const bytes = dagCbor.encode(lie.root)
      const cid = cidForBytes(bytes, 'dag-cbor')
      const forged = new Map(source)
      forged.set(cid.toString(), bytes)
      for (const [c, b] of lie.extra ?? []) forged.set(c.toString(), b)
      await assert.rejects(
        readStoredOutput({ cid: cid.toString(), bytes: ref.bytes }, async (c) => forged.get(c.toString())!),
        rejectsWith('INVALID_OUTPUT'),
      )
    }
    // Bytes that are not UTF-8, stored and described truthfully, are still not an output's text.
    const notText = new Uint8Array(INLINE_OUTPUT_BYTES + 10).fill(0xff)
    const chunk0 = notText.subarray(0, OUTPUT_CHUNK_BYTES)
    const chunk1 = notText.subarray(OUTPUT_CHUNK_BYTES)
    const root = dagCbor.encode({
      v: 1,
      bytes: notText.byteLength,
      chunks: [cidForBytes(chunk0), cidForBytes(chunk1)],
    })
    const rootCid = cidForBytes(root, 'dag-cbor')
    const raw = new Map([
      [rootCid.toString(), root],
      [cidForBytes(chunk0).toString(), chunk0],
      [cidForBytes(chunk1).toString(), chunk1],
    ])
    await assert.rejects(
      readStoredOutput(
        { cid: rootCid.toString(), bytes: notText.byteLength },
        async (c) => raw.get(c.toString())!,
      ),
      rejectsWith('INVALID_OUTPUT'),
    )
  })
})

describe('an executor with a large output', () => {
  let sandbox: Sandbox
  let blocks: BlockMap
  let caller: PrivateKey
  let nodes: TestNode[]
  let fn: string
  let manifest: Manifest
  const stored = new Map<string, Uint8Array>()

  before(async () => {
    sandbox = createSandbox({ workers: 2 })
    blocks = new BlockMap()
    caller = await generateKey()
    nodes = await makeNodes(3)
    const publisher = await generateKey()
    ;({ fn, manifest } = blocks.publish(
      publisher,
      `export function big(mib) {
        const out = []
        for (let i = 0; out.length * 40 < mib * 1024 * 1024; i++) out.push('row ' + i + ' ' + 'y'.repeat(28))
        return out
      }`,
      ['big'],
    ))
  })
  after(() => sandbox.stop())

  const executorFor = (node: TestNode, store = true) =>
    createExecutor({
      key: node.key,
      sandbox,
      getBlock: blocks.get,
      covenant: () => node.covenant,
      view: () => viewOf(nodes),
      storeOutput: store
        ? async (bs) => {
            for (const b of bs) stored.set(b.cid.toString(), b.bytes)
          }
        : undefined,
    })

  const bigRequest = (mib: number, outputMiB: number) =>
    createRequest(caller, {
      fn,
      export: 'big',
      args: [mib],
      k: 3,
      q: 2,
      outputMiB,
      timeoutMs: 30_000,
      fuel: 200_000,
    }).request

  it('stores the output, signs its reference and sends only that; a quorum certifies it', async () => {
    const executors = new Map(nodes.map((n) => [n.peer, executorFor(n)]))
    const replies: ExecReply[] = []
    const result = await invoke({
      request: bigRequest(3, 4),
      manifest,
      view: viewOf(nodes),
      send: async (peer, r) => {
        const reply = await executors.get(peer)!.execute(r)
        replies.push(reply)
        return reply
      },
    })
    assert.equal(result.output.json, undefined)
    assert.ok(result.output.ref)
    assert.equal(result.value, undefined)
    for (const reply of replies) {
      assert.ok('receipt' in reply)
      assert.equal(verifyReceipt(reply.receipt).outputHash, outputHash(reply.output))
      // a reference, not the text: small enough for any reply
      assert.ok(dagCbor.encode(reply.output).byteLength < 1024)
    }
    verifyCertificate(result.certificate, { view: viewOf(nodes), manifest, output: result.output })
    const text = await readStoredOutput(result.output.ref!, async (cid) => stored.get(cid.toString())!)
    const rows = JSON.parse(text) as string[]
    assert.equal(rows[0], `row 0 ${'y'.repeat(28)}`)
    assert.ok(text.length > 3 * MiB)
  })

  it('fails the call deterministically when the output outgrows its tier (OUTPUT_TOO_LARGE, signed)', async () => {
    const reply = await executorFor(nodes[0]).execute(bigRequest(2, 1))
    assert.ok('receipt' in reply, JSON.stringify(reply))
    assert.equal(reply.output.error?.code, 'OUTPUT_TOO_LARGE')
  })

  it('refuses a larger tier than its covenant allows, or when it has nowhere to store an output (signed refusals)', async () => {
    const [small] = await makeNodes(1, executingCovenant({ maxOutputMiB: 1 }))
    const view = viewOf([...nodes, small])
    const strict = createExecutor({
      key: small.key,
      sandbox,
      getBlock: blocks.get,
      covenant: () => small.covenant,
      view: () => view,
      storeOutput: async () => {},
    })
    const refusal = await strict.execute(bigRequest(2, 4))
    assert.ok('refusal' in refusal)
    assert.equal(refusal.refusal.code, 'COVENANT_REFUSED')
    assert.match(refusal.refusal.message, /at most 1 MiB of output/)
    const nowhere = await executorFor(nodes[0], false).execute(bigRequest(2, 4))
    assert.ok('refusal' in nowhere)
    assert.equal(nowhere.refusal.code, 'COVENANT_REFUSED')
    assert.match(nowhere.refusal.message, /does not store outputs/)
  })
})
