/**
 * The Covenant SDK: talks to one node over its HTTP API with global fetch, and checks what it
 * gets (block hashes, covenant signatures, quorum certificates) itself. Works in a browser
 * bundle too (docs/calling.md, "In a browser"): there the devnet lookup, the caller-key file and
 * export detection, which need Node, are swapped (package.json `browser` field) for versions that
 * ask for `node`, `key` and `exports` instead; make a key there with {@link generateKey}.
 *
 * The node is `opts.node`, else `$COVENANT_NODE`, else the first node of the nearest
 * `.covenant/devnet/devnet.json` (from the cwd up to the repo root), else NODE_UNREACHABLE.
 *
 * @example
 * ```ts
 * const client = await connect()                       // the local devnet
 * const { cid, holders } = await client.putBlock(new TextEncoder().encode('hi'), { tags: ['demo'] })
 * const bytes = await client.getBlock(cid)             // hash checked here
 * const fn = await client.deploy(await readFile('dist/fn.js', 'utf8'), { tags: ['demo'], name: 'fn' })
 * console.log(fn.cid, fn.holders)
 * const { value, certificate } = await client.invoke(fn.cid, 'fn', [1, 2], { replicas: 3, quorum: 2 })
 * verifyCertificate(certificate)                       // already done by invoke; anyone can redo it
 *
 * // a datastore: write two keys at once, only if `count` is still at the version read
 * const { ns } = await client.createStore('guestbook', { public: true })
 * const seen = await client.store(ns).get('count')
 * await client.store(ns).commit([{ key: 'count', value: 1 }, { key: 'entries/0', value: 'hi' }],
 *   { reads: [{ key: 'count', version: seen.version }] })
 *
 * // in a browser
 * const net = await connect({ node: 'http://127.0.0.1:4701' })
 * const { value } = await net.invoke(fnCid, 'greet', ['Ada'], { key: await generateKey() })
 * ```
 */
import { CovenantClient } from './client.ts'
import { findDevnetNode } from './node-helpers.ts'

export type { Revocation, WriteGrant, WriteGrantJSON } from '../caps/index.ts'
export { grantFromJSON, grantToJSON } from '../caps/index.ts'
export type { Read, Write, WritePolicyInput } from '../datastore/index.ts'
export { namespaceId } from '../datastore/index.ts'
export type {
  Attempt,
  Certificate,
  CertificateJSON,
  Conflict,
  ConflictJSON,
  VerifiedCertificate,
  VerifyCertificateOptions,
} from '../exec/index.ts'
export {
  certificateFromJSON,
  certificateToJSON,
  conflictFromJSON,
  conflictToJSON,
  verifyCertificate,
  verifyConflict,
} from '../exec/index.ts'
export type { PrivateKey } from '../keys/index.ts'
export { decodeKey, encodeKey, generateKey, keyId } from '../keys/index.ts'
export type {
  DeployOptions,
  DeployResult,
  FunctionInfo,
  InvokeOptions,
  InvokeResult,
  NodeInfo,
  PeerInfo,
  PutBlockResult,
} from './client.ts'
export { CovenantClient } from './client.ts'
export { defaultKeyPath, findDevnetNode, listExports, loadCallerKey } from './node-helpers.ts'
export type { CommitOptions, CommitResult, CreatedStore, CreateStoreOptions } from './store.ts'
export { NamespaceHandle } from './store.ts'

export interface ConnectOptions {
  /** node HTTP API URL */
  node?: string
  /** directory holding devnet.json @default found from the cwd */
  devnetDir?: string
  /** per-request timeout @default 60000 */
  timeoutMs?: number
}

export async function connect(opts: ConnectOptions = {}): Promise<CovenantClient> {
  const env = typeof process === 'undefined' ? undefined : process.env.COVENANT_NODE
  const url =
    opts.node ?? (opts.devnetDir === undefined ? env : undefined) ?? (await findDevnetNode(opts.devnetDir))
  return new CovenantClient(url, { timeoutMs: opts.timeoutMs })
}
