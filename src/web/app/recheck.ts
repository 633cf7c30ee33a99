/**
 * Re-checking a certificate in the visitor's browser. A link carries the certificate and the
 * output it is claimed for in its fragment (`#/verify/<data>`: deflated JSON in base64url), which
 * a browser never sends to a server, and may carry the function's manifest and the URLs of nodes
 * to ask. {@link recheck} verifies them here with the SDK's `verifyCertificate`: the one place the
 * dashboard verifies anything, so a change to what verification needs is made here alone.
 *
 * A certificate proves something only against a view of the network: its signers must be the
 * executors the selection rule picks from it. The view is built here, with the SDK's
 * `viewFromPeerLists`, from the peer lists of the node that served the page and of the nodes the
 * link names: a peer counts if more than half of them list it with a covenant that verifies. The
 * manifest (the function's tags and publisher, which selection reads) is the link's or the serving
 * node's, taken only if it hashes to the request's function CID. So the check trusts those nodes,
 * by majority, to say who the network's executors are, and nothing else: every signature, the
 * selection and the output are checked here.
 */
import { z } from 'zod'
import {
  CovenantClient,
  certificateFromJSON,
  type PeerInfo,
  verifyCertificate,
  viewFromPeerLists,
} from '../../client/index.ts'
import { decodeManifest, type Manifest, parseCid, verifyBlock } from '../../content/index.ts'
import { fromBase64 } from '../../encoding/index.ts'
import { CovenantError } from '../../errors/index.ts'
import { CertificateJSONSchema, OutputSchema } from '../../exec/index.ts'

/** The most nodes a link may name besides the serving one. */
const MAX_LINK_NODES = 16
/** How long a node has to list its peers. */
const PEERS_TIMEOUT_MS = 10_000

const RecheckDataSchema = z.strictObject({
  certificate: CertificateJSONSchema,
  output: OutputSchema,
  /** the function's manifest block, base64; checked against the request's `fn` */
  manifest: z
    .string()
    .max(128 * 1024)
    .optional(),
  /** HTTP API URLs of nodes whose peer lists make the view with the serving node's */
  nodes: z
    .array(z.url({ protocol: /^https?$/ }))
    .max(MAX_LINK_NODES)
    .optional(),
})
export type RecheckData = z.infer<typeof RecheckDataSchema>

/** What a re-check relied on, for the page to say. */
export interface Trusted {
  /** the nodes whose peer lists made the view, the serving node first */
  nodes: string[]
  /** those that answered; a node that did not counts as listing no one */
  answered: string[]
  /** the peers of the view: listed by more than half of `nodes` with a covenant that verifies */
  peers: number
  /** where the manifest came from, hash-checked against the function's CID; none if it could not be had */
  manifest: 'link' | 'node' | 'none'
}

/** What a re-check found: the certified value, or why the certificate does not hold, and what it trusted. */
export type RecheckResult = ({ ok: true; value: unknown } | { ok: false; code: string; message: string }) & {
  trusted: Trusted
}

function failure(err: unknown): { ok: false; code: string; message: string } {
  const e = err as { code?: unknown; message?: unknown }
  return {
    ok: false,
    code: typeof e.code === 'string' ? e.code : 'INVALID_CERTIFICATE',
    message: typeof e.message === 'string' ? e.message : String(err),
  }
}

function withoutSlash(url: string): string {
  return url.replace(/\/+$/, '')
}

/** The function's manifest from the link's bytes; INVALID_CERTIFICATE if they are not the block `fn` names. */
function linkManifest(fn: string, base64: string): Manifest {
  const bytes = fromBase64(base64)
  if (bytes === undefined || !verifyBlock(parseCid(fn), bytes))
    throw new CovenantError('INVALID_CERTIFICATE', `the link's manifest does not hash to the function ${fn}`)
  return decodeManifest(bytes)
}

/**
 * Verifies the certificate against a view built here (see the module comment) and the function's
 * manifest, and that the output is the one it certifies. `origin` is the node that served the page.
 */
export async function recheck(data: RecheckData, origin: string): Promise<RecheckResult> {
  const served = withoutSlash(origin)
  const nodes = [...new Set([served, ...(data.nodes ?? []).map(withoutSlash)])]
  const lists: Array<PeerInfo[] | undefined> = await Promise.all(
    nodes.map((url) =>
      new CovenantClient(url, { timeoutMs: PEERS_TIMEOUT_MS }).peers().then(
        (peers) => peers,
        () => undefined,
      ),
    ),
  )
  const view = viewFromPeerLists(lists)
  const trusted: Trusted = {
    nodes,
    answered: nodes.filter((_, i) => lists[i] !== undefined),
    peers: view.peers.size,
    manifest: 'none',
  }
  if (trusted.answered.length === 0)
    return {
      ok: false,
      code: 'NODE_UNREACHABLE',
      message: `none of ${nodes.join(', ')} listed its peers: there is no view to check against`,
      trusted,
    }
  try {
    const certificate = certificateFromJSON(data.certificate)
    const fn = certificate.request.fn
    let manifest: Manifest
    if (data.manifest !== undefined) {
      manifest = linkManifest(fn, data.manifest)
      trusted.manifest = 'link'
    } else {
      try {
        manifest = await new CovenantClient(served).manifest(fn)
      } catch (err) {
        throw new CovenantError(
          'INVALID_CERTIFICATE',
          `the function's manifest cannot be had from ${served}: ${failure(err).message}`,
          { cause: err },
        )
      }
      trusted.manifest = 'node'
    }
    const verified = verifyCertificate(certificate, { view, manifest, output: data.output })
    return { ok: true, value: verified.value, trusted }
  } catch (err) {
    return { ...failure(err), trusted }
  }
}

async function pipe(
  bytes: Uint8Array,
  through: CompressionStream | DecompressionStream,
): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(through)
  return new Uint8Array(await new Response(stream).arrayBuffer())
}

function toBase64Url(bytes: Uint8Array): string {
  let text = ''
  for (const b of bytes) text += String.fromCharCode(b)
  return btoa(text).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '')
}

function fromBase64Url(text: string): Uint8Array {
  const plain = atob(text.replaceAll('-', '+').replaceAll('_', '/'))
  return Uint8Array.from(plain, (c) => c.charCodeAt(0))
}

/** The fragment data of a re-check link. */
export async function encodeRecheck(data: RecheckData): Promise<string> {
  const json = new TextEncoder().encode(JSON.stringify(data))
  return toBase64Url(await pipe(json, new CompressionStream('deflate-raw')))
}

/** Reads a re-check link's fragment data; throws when it is not one. */
export async function decodeRecheck(text: string): Promise<RecheckData> {
  const json = new TextDecoder().decode(
    await pipe(fromBase64Url(text), new DecompressionStream('deflate-raw')),
  )
  return RecheckDataSchema.parse(JSON.parse(json))
}

/** A link anyone can open to re-check `data` in their own browser, on the node at `origin`. */
export async function recheckLink(origin: string, data: RecheckData): Promise<string> {
  return `${origin}/#/verify/${await encodeRecheck(data)}`
}
