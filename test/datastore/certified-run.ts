/**
 * Certified function runs built in process, as test/fixtures/exec-cluster.ts builds them for exec:
 * real keys, signed covenants, a real request, executors picked by exec's selection rule, and
 * receipts each executor signs over an output carrying store effects (exec's `store`, one per
 * namespace). The verifier is built like the one a node's holder injects: exec's
 * `verifyCertificate` against the holder's own view (the covenants and manifests it knows), with
 * the output, and the effects it carries on the namespace.
 */

import type { Manifest } from '../../src/content/index.ts'
import type { StoreEffects, VerifyRun } from '../../src/datastore/index.ts'
import { CovenantError } from '../../src/errors/index.ts'
import {
  type Certificate,
  CertificateSchema,
  createRequest,
  type Output,
  OutputSchema,
  outputHash,
  rankExecutors,
  signReceipt,
  type View,
  verifyCertificate,
} from '../../src/exec/index.ts'
import { generateKey, type PrivateKey } from '../../src/keys/index.ts'
import { SANDBOX_BUILD } from '../../src/sandbox/index.ts'
import { BlockMap, makeNodes, type TestNode, viewOf } from '../fixtures/exec-cluster.ts'

export interface Cluster {
  nodes: TestNode[]
  caller: PrivateKey
  blocks: BlockMap
  publisher: PrivateKey
}

export async function makeCluster(n = 5): Promise<Cluster> {
  const [nodes, caller, publisher] = await Promise.all([makeNodes(n), generateKey(), generateKey()])
  return { nodes, caller, blocks: new BlockMap(), publisher }
}

/** Publishes a function; its manifest CID names it. */
export function publish(cluster: Cluster, code: string): { fn: string; manifest: Manifest } {
  return cluster.blocks.publish(cluster.publisher, code, ['main'])
}

export interface RunInit {
  fn: string
  manifest: Manifest
  effects: StoreEffects[]
  k?: number
  q?: number
  /** how many of the chosen executors sign; @default q */
  signers?: number
}

/** A run of `fn` whose chosen executors sign an output carrying `effects`. */
export function certifiedRun(
  cluster: Cluster,
  init: RunInit,
): { request: string; certificate: Certificate; output: Output & { store: StoreEffects[] } } {
  const k = init.k ?? 3
  const q = init.q ?? 2
  const { request, id } = createRequest(cluster.caller, { fn: init.fn, export: 'main', args: [], k, q })
  const chosen = rankExecutors(viewOf(cluster.nodes), request, init.manifest).ordered.slice(0, k)
  const output = { json: 'null', logs: [], error: null, store: init.effects }
  const hash = outputHash(output)
  const receipts = chosen.slice(0, init.signers ?? q).map((peer) => {
    const node = cluster.nodes.find((n) => n.peer === peer)!
    return signReceipt(node.key, {
      request: id,
      outputHash: hash,
      fuel: 10,
      covenantVersion: 1,
      build: SANDBOX_BUILD,
    })
  })
  return { request: id, certificate: { request, id, outputHash: hash, receipts, skipped: [] }, output }
}

function refuse(message: string): never {
  throw new CovenantError('INVALID_CERTIFICATE', message)
}

/**
 * The verifier of a holder whose view of the network is `view`, knowing `manifests`. It accepts
 * any q exec would (minQuorum 1): the namespace's write policy, which the datastore applies after
 * it, is what sets the smallest quorum for a write.
 */
export function verifierFor(holder: { view: View; manifests: ReadonlyMap<string, Manifest> }): VerifyRun {
  return (proof, { namespace }) => {
    const cert = CertificateSchema.safeParse(proof.certificate)
    if (!cert.success) refuse('malformed certificate')
    const manifest = holder.manifests.get(cert.data.request.fn)
    if (manifest === undefined) refuse(`function ${cert.data.request.fn} is unknown here`)
    const output = OutputSchema.safeParse(proof.output)
    if (!output.success) refuse('malformed output')
    verifyCertificate(proof.certificate, { view: holder.view, manifest, output: output.data, minQuorum: 1 })
    const effects = output.data.store?.find((e) => e.ns === namespace)
    if (effects === undefined) refuse('the output does not write this namespace')
    return {
      fn: cert.data.request.fn,
      request: cert.data.id,
      effects,
      replicas: cert.data.request.k,
      certifiers: cert.data.receipts.map((r) => r.executor),
    }
  }
}

/** The view of a holder that knows every node of the cluster and the given functions. */
export function fullView(cluster: Cluster, ...functions: Array<{ fn: string; manifest: Manifest }>) {
  return verifierFor({
    view: viewOf(cluster.nodes),
    manifests: new Map(functions.map((f) => [f.fn, f.manifest])),
  })
}
