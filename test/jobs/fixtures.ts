import type { Manifest } from '../../src/content/index.ts'
import { CovenantError } from '../../src/errors/index.ts'
import {
  type Certificate,
  CertificateSchema,
  createRequest,
  epochOf,
  mintTicket,
  type Output,
  outputHash,
  rankExecutors,
  signReceipt,
  type View,
  verifyCertificate,
} from '../../src/exec/index.ts'
import {
  createJob,
  dispatchRequest,
  type JobRecord,
  OutputWithJobsSchema,
  type VerifyRun,
} from '../../src/jobs/index.ts'
import { generateKey, keyId, type PrivateKey } from '../../src/keys/index.ts'
import { type EffectJob, SANDBOX_BUILD } from '../../src/sandbox/index.ts'
import { BlockMap, makeNodes, type TestNode, viewOf } from '../fixtures/exec-cluster.ts'

export type OutputWithJobs = Output & { jobs: EffectJob[] }

export interface Network {
  nodes: TestNode[]
  view: View
  blocks: BlockMap
  fn: string
  manifest: Manifest
}

/** Five executing nodes and one published function with the exports `f` and `main`. */
export async function network(): Promise<Network> {
  const nodes = await makeNodes(5)
  const blocks = new BlockMap()
  const { fn, manifest } = blocks.publish(
    await generateKey(),
    'export const f = () => 1; export const main = f',
    ['f', 'main'],
  )
  return { nodes, view: viewOf(nodes), blocks, fn, manifest }
}

/** A certificate whose chosen executors (the first q, or `signers`) sign the output hash `hash` for the request. */
function certify(
  net: Network,
  made: { request: Certificate['request']; id: string },
  hash: string,
  signers?: number,
): Certificate {
  const { request, id } = made
  const chosen = rankExecutors(net.view, request, net.manifest).ordered.slice(0, request.k)
  const receipts = chosen.slice(0, signers ?? request.q).map((peer) => {
    const node = net.nodes.find((n) => n.peer === peer)!
    return signReceipt(node.key, {
      request: id,
      outputHash: hash,
      fuel: 3,
      covenantVersion: 1,
      build: SANDBOX_BUILD,
    })
  })
  return { request, id, outputHash: hash, receipts, skipped: [] }
}

export interface CertifiedJobRun {
  net: Network
  enqueuer: PrivateKey
  keeperKey: PrivateKey
  keeper: string
  record: JobRecord
  id: string
  run: { certificate: Certificate; output: Output }
}

/** A job, and a certified run of its first attempt dispatched by a keeper, returning `1`. */
export async function certifiedJobRun(net?: Network): Promise<CertifiedJobRun> {
  const n = net ?? (await network())
  const [enqueuer, keeperKey] = await Promise.all([generateKey(), generateKey()])
  const now = Date.now()
  const job = createJob(enqueuer, { fn: n.fn, export: 'f', args: [7] }, now)
  const made = dispatchRequest(keeperKey, job, 1, mintTicket(keyId(keeperKey), epochOf(now)), now)
  const output: Output = { json: '1', logs: [], error: null }
  return {
    net: n,
    enqueuer,
    keeperKey,
    keeper: keyId(keeperKey),
    ...job,
    run: { certificate: certify(n, made, outputHash(output)), output },
  }
}

/**
 * An ordinary run of `main` whose output lists `jobs`: its receipts sign the extended hash with
 * `signJobs` (exec once it covers jobs), else exec's hash of today, which ignores them.
 */
export async function runThatEnqueues(
  net: Network,
  jobs: EffectJob[],
  opts: { signJobs: boolean; caller?: PrivateKey },
): Promise<{ certificate: Certificate; output: OutputWithJobs; caller: PrivateKey }> {
  const caller = opts.caller ?? (await generateKey())
  const made = createRequest(caller, { fn: net.fn, export: 'main', args: [], fuel: 20_000 })
  const output: OutputWithJobs = { json: 'null', logs: [], error: null, jobs }
  const { jobs: _, ...withoutJobs } = output
  const hash = outputHash(opts.signJobs ? output : withoutJobs)
  return { certificate: certify(net, made, hash), output, caller }
}

/** The verifier a keeper whose view is `view` injects: the certificate against the view, then the output's hash. */
export function modelVerifier(net: Pick<Network, 'view' | 'fn' | 'manifest'>): VerifyRun {
  return async (proof) => {
    const cert = CertificateSchema.safeParse(proof.certificate)
    if (!cert.success) throw new CovenantError('INVALID_CERTIFICATE', 'malformed certificate')
    if (cert.data.request.fn !== net.fn) throw new CovenantError('INVALID_CERTIFICATE', 'unknown function')
    verifyCertificate(cert.data, { view: net.view, manifest: net.manifest, minQuorum: 1 })
    const output = OutputWithJobsSchema.safeParse(proof.output)
    if (!output.success || outputHash(output.data) !== cert.data.outputHash)
      throw new CovenantError('INVALID_CERTIFICATE', 'the output is not the certified one')
    return { request: cert.data.request, id: cert.data.id, jobs: output.data.jobs }
  }
}

/**
 * A certified run of attempt 1 of `job`, dispatched by a keeper (a fresh key), whose output lists
 * `jobs` (signed by the receipts).
 */
export async function attemptThatEnqueues(
  net: Network,
  job: { record: JobRecord; id: string },
  jobs: EffectJob[],
): Promise<{ certificate: Certificate; output: OutputWithJobs; keeper: string }> {
  const keeperKey = await generateKey()
  const now = Date.now()
  const made = dispatchRequest(keeperKey, job, 1, mintTicket(keyId(keeperKey), epochOf(now)), now)
  const output: OutputWithJobs = { json: 'null', logs: [], error: null, jobs }
  return { certificate: certify(net, made, outputHash(output)), output, keeper: keyId(keeperKey) }
}
