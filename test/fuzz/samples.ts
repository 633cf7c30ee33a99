/**
 * Real signed messages for the fuzzers to mutate: a covenant, a manifest, a request with its
 * receipts, refusal, certificate and conflict evidence, a namespace with a grant, a write, its
 * entry and a revocation, a signed read, and a cheque, a deposit and an invoice. Each comes as the
 * wire carries it (DAG-CBOR decoded back, so bytes are plain Uint8Arrays) and, where it has one, in
 * its JSON form.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { delegateWrite, revoke, type WriteGrant } from '../../src/caps/index.ts'
import { cidForBytes, createManifest } from '../../src/content/index.ts'
import { type CovenantConfigInput, CovenantConfigSchema, covenantToYaml } from '../../src/covenant/index.ts'
import {
  createKeyCommit,
  createNamespace,
  descriptorCid,
  encodeEntry,
  type KeyCommit,
  signRead,
} from '../../src/datastore/index.ts'
import { bytesFieldsToJSON } from '../../src/encoding/index.ts'
import { CovenantError } from '../../src/errors/index.ts'
import {
  type Certificate,
  type Conflict,
  certificateToJSON,
  conflictToJSON,
  createRequest,
  outputHash,
  rankExecutors,
  requestToJSON,
  signReceipt,
  signRefusal,
  type View,
} from '../../src/exec/index.ts'
import { generateKey, keyId, type PrivateKey } from '../../src/keys/index.ts'
import { signCheque, signDeposit, signInvoice } from '../../src/ledger/index.ts'
import { executingCovenant, makeNodes, type TestNode, viewOf } from '../fixtures/exec-cluster.ts'

/** What a peer receives: the value through DAG-CBOR and back (plain bytes, CIDs as CIDs). */
export function wire<T>(value: T): T {
  return dagCbor.decode(dagCbor.encode(value)) as T
}

/** What an HTTP body or a file holds: the value through JSON text and back. */
export function jsonOf(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value))
}

/** A covenant that sets every section, so mutations reach every field. */
export const FULL_COVENANT: CovenantConfigInput = {
  ...executingCovenant({ refusedTags: ['nsfw'], maxFuel: 5_000_000 }),
  store: { enabled: true, maxBytes: 1024 * 1024 * 1024, refusedTags: ['nsfw', 'gambling'] },
}

export interface Samples {
  nodes: TestNode[]
  view: View
  owner: PrivateKey
  writer: PrivateKey
  covenant: { yaml: string[]; signed: unknown; json: unknown; bytes: Uint8Array }
  manifest: {
    bytes: Uint8Array
    value: unknown
    json: unknown
    selection: { tags: string[]; publisher: string }
  }
  request: { value: unknown; json: unknown; id: string }
  receipts: unknown[]
  refusal: unknown
  certificate: { value: unknown; json: unknown; id: string; outputHash: string }
  conflict: { value: unknown; json: unknown }
  namespace: { id: string; owner: string; descriptor: unknown; json: unknown; readToken: unknown }
  grant: { value: WriteGrant; chain: unknown; json: unknown; long: WriteGrant }
  commit: { value: unknown; invocation: Uint8Array; entry: Uint8Array }
  revocation: unknown
  cheque: { value: unknown; json: unknown }
  deposit: { value: unknown; json: unknown }
  invoice: unknown
}

/** Builds every sample with fresh keys; takes about a second. */
export async function makeSamples(): Promise<Samples> {
  const nodes = await makeNodes(6, FULL_COVENANT)
  const view = viewOf(nodes)
  const [owner, writer, publisher, third] = await Promise.all([
    generateKey(),
    generateKey(),
    generateKey(),
    generateKey(),
  ])
  const now = Date.now()

  const config = CovenantConfigSchema.parse(FULL_COVENANT)
  const signed = nodes[0].covenant

  const code = new TextEncoder().encode('export function add(a, b) { return a + b }')
  const made = createManifest(publisher, {
    code: cidForBytes(code, 'raw'),
    size: code.length,
    exports: ['add', 'sub'],
    tags: ['math'],
    name: 'adder',
  })
  const fn = made.cid.toString()
  const selection = { tags: made.manifest.tags, publisher: made.manifest.publisher }

  const { request, id } = createRequest(owner, {
    fn,
    export: 'add',
    args: [1, { b: [2, 'three'] }],
    k: 3,
    q: 2,
  })
  const output = { json: '{"sum":3}', logs: ['adding'], error: null }
  const ranked = rankExecutors(view, request, selection).ordered.map((p) => nodes.find((n) => n.peer === p)!)
  const receipt = (n: TestNode, o: typeof output) =>
    signReceipt(n.key, {
      request: id,
      outputHash: outputHash(o),
      fuel: 7,
      covenantVersion: 1,
      build: 'bd'.repeat(32),
    })
  const receipts = [receipt(ranked[0], output), receipt(ranked[1], output)]
  const certificate: Certificate = { request, id, outputHash: outputHash(output), receipts, skipped: [] }
  const conflict: Conflict = { receipt: receipt(ranked[2], { ...output, json: '{"sum":4}' }), certificate }
  const refusal = signRefusal(ranked[3].key, id, new CovenantError('NOT_SELECTED'))

  const { id: ns, descriptor } = createNamespace(owner, {
    name: 'guestbook',
    public: false,
    policy: { minReplicas: 3, minQuorum: 2 },
  })
  const grant = await delegateWrite({
    issuer: owner,
    audience: keyId(writer),
    namespace: ns,
    prefix: 'notes/',
    expiresAt: now + 24 * 3600_000,
  })
  const long = await delegateWrite({
    issuer: writer,
    audience: keyId(third),
    namespace: ns,
    prefix: 'notes/today/',
    expiresAt: now + 3600_000,
    proof: grant,
  })
  const commit: KeyCommit = await createKeyCommit({
    issuer: writer,
    ns,
    writes: [
      { key: 'notes/a', value: { text: 'hello', n: 1, nested: [true, null, 2.5] } },
      { key: 'notes/b', value: 'é🂡' },
    ],
    reads: [{ key: 'notes/c', version: 0 }],
    grants: [grant],
  })
  const entry = encodeEntry({ ...commit, seq: 1, prev: descriptorCid(descriptor), at: now })
  const revocation = await revoke({ issuer: owner, namespace: ns, grant })

  const cheque = signCheque(owner, { payee: nodes[0].peer, cumulative: 1_500_000, seq: 3, issuedAt: now })
  const deposit = signDeposit(nodes[0].key, {
    payer: keyId(owner),
    amount: 10_000_000,
    id: 'faucet-0001',
    issuedAt: now,
  })
  const invoice = signInvoice(nodes[1].key, {
    kind: 'store',
    payer: keyId(owner),
    seq: 1,
    covenantVersion: 1,
    issuedAt: now,
    pricePerBytePerDay: 0,
    fromDay: 20_000,
    toDay: 20_030,
    lines: [
      { cid: made.cid.toString(), bytes: made.bytes.length, days: 30 },
      { cid: cidForBytes(code, 'raw').toString(), bytes: code.length, days: 10 },
    ],
  })

  return {
    nodes,
    view,
    owner,
    writer,
    covenant: {
      yaml: [covenantToYaml(config), covenantToYaml(CovenantConfigSchema.parse({})), ANCHORED_YAML],
      signed: wire(signed),
      json: jsonOf(bytesFieldsToJSON(signed)),
      bytes: dagCbor.encode(signed),
    },
    manifest: {
      bytes: made.bytes,
      value: wire(made.manifest),
      json: jsonOf(bytesFieldsToJSON({ ...made.manifest, code: fn })),
      selection,
    },
    request: { value: wire(request), json: jsonOf(requestToJSON(request)), id },
    receipts: wire(receipts),
    refusal: wire(refusal),
    certificate: {
      value: wire(certificate),
      json: jsonOf(certificateToJSON(certificate)),
      id,
      outputHash: certificate.outputHash,
    },
    conflict: { value: wire(conflict), json: jsonOf(conflictToJSON(conflict)) },
    namespace: {
      id: ns,
      owner: keyId(owner),
      descriptor: wire(descriptor),
      json: jsonOf(bytesFieldsToJSON(descriptor)),
      readToken: wire(signRead(owner, ns)),
    },
    grant: {
      value: grant,
      chain: wire(grant.chain),
      json: jsonOf({ cid: grant.cid, chain: grant.chain.map((t) => Buffer.from(t).toString('base64')) }),
      long,
    },
    commit: { value: wire(commit), invocation: commit.proof.invocation, entry },
    revocation: wire(revocation),
    cheque: { value: wire(cheque), json: jsonOf(bytesFieldsToJSON(cheque)) },
    deposit: { value: wire(deposit), json: jsonOf(bytesFieldsToJSON(deposit)) },
    invoice: wire(invoice),
  }
}

/** A covenant written with YAML's own features: anchors, aliases, a merge key, tags, block scalars. */
const ANCHORED_YAML = `%YAML 1.2
---
statement: |
  Stores and runs "pure" functions.
  Nothing else.
store:
  enabled: true
  maxBytes: !!str 2GiB
  refusedTags: &tags [nsfw, gambling]
  noticeDays: 7
serve: { pricePerByte: 0 }
execute: &exec
  enabled: true
  maxFuel: 0x1000000
  concurrency: 3
  refusedTags: *tags
credit: 10000000
...
`
