/**
 * Re-checking a certificate in the visitor's browser. A link carries the certificate and the
 * output it is claimed for in its fragment (`#/verify/<data>`: deflated JSON in base64url), which
 * a browser never sends to a server, and {@link recheck} verifies them here with the SDK's
 * `verifyCertificate`: the one place the dashboard verifies anything, so a change to what
 * verification needs is made here alone.
 */
import { z } from 'zod'
import { type CertificateJSON, certificateFromJSON, verifyCertificate } from '../../client/index.ts'
import { CertificateJSONSchema, type Output, OutputSchema } from '../../exec/index.ts'

export interface RecheckData {
  certificate: CertificateJSON
  output: Output
}

const RecheckDataSchema = z.strictObject({ certificate: CertificateJSONSchema, output: OutputSchema })

/** What a re-check found: the certified value, or why the certificate does not hold. */
export type RecheckResult = { ok: true; value: unknown } | { ok: false; code: string; message: string }

/** Verifies the certificate, and that the output is the one it certifies. */
export function recheck(data: RecheckData): RecheckResult {
  try {
    const verified = verifyCertificate(certificateFromJSON(data.certificate), { output: data.output })
    return { ok: true, value: verified.value }
  } catch (err) {
    const e = err as { code?: string; message?: string }
    return { ok: false, code: e.code ?? 'INVALID_CERTIFICATE', message: e.message ?? String(err) }
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
