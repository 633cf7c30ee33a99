/**
 * Blocks and functions over HTTP, served from storage: put and get blocks, find their holders,
 * deploy a function (its code and signed manifest) and read it back, inspect a module before it
 * is deployed, and what this node stores and why. A node whose covenant would not serve content
 * does not pass it through either way. Tags come only from signed manifests: a block put on its
 * own has none; a function's code takes its manifest's.
 */
import { Counter } from 'prom-client'
import {
  BLOCK_SOURCE_HEADER,
  BLOCK_TAGS_HEADER,
  blockHoldersRoute,
  deployRoute,
  getBlockRoute,
  getFunctionRoute,
  inspectRoute,
  putBlockRoute,
  storageRoute,
} from '../../api/index.ts'
import { assertSelfContained, inspectModule } from '../../bundle/index.ts'
import {
  cidForBytes,
  DAG_CBOR_CODEC,
  decodeManifest,
  MAX_BLOCK_BYTES,
  MAX_MANIFEST_BYTES,
  manifestToJSON,
  parseCid,
  RAW_CODEC,
} from '../../content/index.ts'
import { mayServe } from '../../covenant/index.ts'
import { fromBase64 } from '../../encoding/index.ts'
import { CovenantError } from '../../errors/index.ts'
import { route } from '../http.ts'
import type { NodeComponents, NodeService } from '../service.ts'

export type BlocksServiceComponents = Pick<NodeComponents, 'storage' | 'covenant' | 'http' | 'metrics'> &
  Partial<Pick<NodeComponents, 'fault'>>

/**
 * Devnet faults of this service (node option `fault`, refused outside a devnet): `wrong-blocks`
 * serves every raw block over HTTP with its first byte changed, as a node lying about content it
 * holds would (a reader's hash check catches it).
 */
export const BLOCK_FAULT_KINDS = ['wrong-blocks'] as const

/** Serves blocks and functions from the node's storage. */
export function blocksService(c: BlocksServiceComponents): NodeService {
  const { storage, http } = c
  const blockGets = new Counter({
    name: 'covenant_block_gets_total',
    help: 'blocks served to HTTP callers, by where they came from',
    labelNames: ['source'],
    registers: [c.metrics.registry],
  })

  function assertServes(tags: string[]): void {
    const d = mayServe(c.covenant().config, { tags })
    if (!d.ok) throw new CovenantError('COVENANT_REFUSED', `this node ${d.reason}`)
  }

  route(http, putBlockRoute, async function putBlock({ body }) {
    return storage.put(body)
  })

  route(http, getBlockRoute, async function getBlock({ params }, reply) {
    const got = await storage.get(parseCid(params.cid))
    assertServes(got.tags)
    blockGets.inc({ source: got.source })
    reply.header(BLOCK_TAGS_HEADER, got.tags.join(',')).header(BLOCK_SOURCE_HEADER, got.source)
    if (c.fault === 'wrong-blocks' && parseCid(params.cid).code === RAW_CODEC && got.bytes.length > 0) {
      const lie = Uint8Array.from(got.bytes)
      lie[0] ^= 0xff
      return lie
    }
    return got.bytes
  })

  route(http, blockHoldersRoute, async function blockHolders({ params }) {
    const cid = parseCid(params.cid)
    return { cid: cid.toString(), holders: await storage.locate(cid) }
  })

  route(http, deployRoute, async function deploy({ body }) {
    const manifestBytes = fromBase64(body.manifest)
    if (manifestBytes === undefined) throw new CovenantError('PROTOCOL_ERROR', 'the manifest is not base64')
    if (manifestBytes.length > MAX_MANIFEST_BYTES)
      throw new CovenantError('MESSAGE_TOO_LARGE', `a manifest is at most ${MAX_MANIFEST_BYTES} bytes`)
    const manifest = decodeManifest(manifestBytes)
    const code = new TextEncoder().encode(body.code)
    if (code.length > MAX_BLOCK_BYTES)
      throw new CovenantError('BUNDLE_TOO_LARGE', `a function bundle is at most ${MAX_BLOCK_BYTES} bytes`)
    const codeCid = cidForBytes(code, 'raw')
    if (!codeCid.equals(manifest.code))
      throw new CovenantError(
        'HASH_MISMATCH',
        `the code hashes to ${codeCid}, the manifest names ${manifest.code}`,
      )
    if (manifest.size !== code.length)
      throw new CovenantError(
        'INVALID_INPUT',
        `the manifest says ${manifest.size} bytes, the code has ${code.length}`,
      )
    assertServes(manifest.tags)
    // Code that cannot run is refused now, not on every call: it must load on its own and export
    // what its manifest lists.
    const inspection = await inspectModule(body.code)
    assertSelfContained(inspection)
    const missing = manifest.exports.filter((e) => !inspection.exports.includes(e))
    if (missing.length > 0)
      throw new CovenantError(
        'INVALID_CODE',
        `the manifest lists ${missing.join(', ')}, which the code does not export (it exports ${inspection.exports.join(', ') || 'nothing'})`,
      )
    // storage.put refuses (COVENANT_REFUSED) what this node would not serve: it passes nothing on
    const codePut = await storage.put(code, { manifests: [manifestBytes] })
    const manifestPut = await storage.put(manifestBytes, { codec: 'dag-cbor' })
    return {
      cid: manifestPut.cid,
      codeCid: codePut.cid,
      holders: manifestPut.holders,
      codeHolders: codePut.holders,
      wanted: manifestPut.wanted,
    }
  })

  route(http, getFunctionRoute, async function getFunction({ params }) {
    const cid = parseCid(params.cid)
    if (cid.code !== DAG_CBOR_CODEC)
      throw new CovenantError('INVALID_CID', 'a function is named by a dag-cbor manifest CID')
    const manifest = decodeManifest((await storage.get(cid)).bytes)
    assertServes(manifest.tags)
    return { cid: cid.toString(), manifest: manifestToJSON(manifest), holders: await storage.locate(cid) }
  })

  route(http, inspectRoute, async function inspect({ body }) {
    const { code, exports, imports } = await inspectModule(body.code, { typescript: body.typescript })
    return { code, exports, imports }
  })

  route(http, storageRoute, async function storageInfo({ query }) {
    const store = c.covenant().config.store
    const described = storage.describe(query)
    return {
      ...described,
      maxBytes: store.maxBytes,
      storeEnabled: store.enabled,
      replicas: storage.options.replicas,
      repair: { intervalMs: storage.options.repairIntervalMs, ...described.repair },
    }
  })

  return { name: 'blocks' }
}
