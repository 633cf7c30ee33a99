/**
 * Outputs too large to travel in a reply: the JSON text is stored in the content network as
 * chunks, and the output carries a reference to them that its hash covers. Executors do not ship
 * a large value through the gateway; the caller fetches it once and checks it against the hash.
 *
 * A request may ask for an output of up to `outputMiB` (a tier, 1 by default; a covenant states
 * the most it accepts, `execute.maxOutputMiB`). The sandbox stops a larger one (OUTPUT_TOO_LARGE).
 * A JSON text of at most {@link INLINE_OUTPUT_BYTES} (UTF-8) travels in the reply as before; a
 * longer one is stored, by the same rule on every executor, so every honest executor computes the
 * same reference and the same output hash without sending a byte of it:
 *
 * - chunks: the UTF-8 bytes of the JSON text cut every {@link OUTPUT_CHUNK_BYTES} (the last one
 *   shorter), each a raw block (CIDv1, raw, sha2-256);
 * - root: the DAG-CBOR block `{ v: 1, bytes: <total>, chunks: [<CID link>, …] }` (CIDv1, dag-cbor,
 *   sha2-256);
 * - the output is `{ ref: { cid: <root CID>, bytes: <total> }, logs, error }`, hashed like any
 *   output (output.ts): so the receipt signs the root's CID, which names every chunk's hash.
 *
 * A reader checks every block against its CID, the root's shape, each chunk's size and the total,
 * and that the text is UTF-8; any copy that fails is someone's lie, and the next source is tried.
 */
import * as dagCbor from '@ipld/dag-cbor'
import { z } from 'zod'
import { type BlockCodec, CID, cidForBytes, cidString, parseCid, verifyBlock } from '../content/index.ts'
import { CovenantError } from '../errors/index.ts'
import { MAX_JSON_BYTES, SafeUintSchema } from './fields.ts'

/** The longest JSON text (UTF-8 bytes) a reply carries; a longer one is stored. */
export const INLINE_OUTPUT_BYTES = MAX_JSON_BYTES
/** The size of each stored chunk but the last. */
export const OUTPUT_CHUNK_BYTES = 1024 * 1024
/** The largest output any request may ask for, in MiB: the sandbox's bound. */
export const MAX_OUTPUT_MIB = 64

/** Where a stored output's JSON text is: its root block, and its length in UTF-8 bytes. */
export const OutputRefSchema = z.strictObject({
  cid: cidString('dag-cbor'),
  bytes: SafeUintSchema.max(MAX_OUTPUT_MIB * 1024 * 1024),
})
export type OutputRef = z.infer<typeof OutputRefSchema>

const RootSchema = z.strictObject({
  v: z.literal(1),
  bytes: SafeUintSchema,
  chunks: z.array(z.custom<CID>((c) => CID.asCID(c) !== null, 'expected a CID link')).max(MAX_OUTPUT_MIB),
})

/** One block of a stored output. */
export interface OutputBlock {
  cid: CID
  bytes: Uint8Array
  codec: BlockCodec
}

/** Whether a JSON text of this many UTF-8 bytes is stored rather than carried in the reply. */
export function isStoredSize(utf8Bytes: number): boolean {
  return utf8Bytes > INLINE_OUTPUT_BYTES
}

/** Whether a JSON text is stored rather than carried (a UTF-16 unit is at most 3 UTF-8 bytes). */
export function isStored(json: string): boolean {
  return json.length * 3 > INLINE_OUTPUT_BYTES && isStoredSize(new TextEncoder().encode(json).byteLength)
}

/** The blocks of a JSON text (chunks first, the root last) and the reference the output carries. */
export function storedOutput(json: string): { ref: OutputRef; blocks: OutputBlock[] } {
  const text = new TextEncoder().encode(json)
  const blocks: OutputBlock[] = []
  for (let at = 0; at < text.byteLength; at += OUTPUT_CHUNK_BYTES) {
    const bytes = text.subarray(at, at + OUTPUT_CHUNK_BYTES)
    blocks.push({ cid: cidForBytes(bytes, 'raw'), bytes, codec: 'raw' })
  }
  const root = dagCbor.encode({ v: 1, bytes: text.byteLength, chunks: blocks.map((b) => b.cid) })
  const cid = cidForBytes(root, 'dag-cbor')
  blocks.push({ cid, bytes: root, codec: 'dag-cbor' })
  return { ref: { cid: cid.toString(), bytes: text.byteLength }, blocks }
}

/**
 * Reads a stored output's JSON text through `getBlock`, checking every block against its CID and
 * the whole against `ref`; a `getBlock` that tries several sources should check each copy itself
 * and move on from a bad one. Throws HASH_MISMATCH (bytes that are not what the reference names)
 * or INVALID_OUTPUT (a root that does not describe `ref.bytes` of UTF-8 text in chunks).
 */
export async function readStoredOutput(
  ref: OutputRef,
  getBlock: (cid: CID) => Promise<Uint8Array>,
): Promise<string> {
  const rootCid = parseCid(ref.cid)
  const fetch = async (cid: CID): Promise<Uint8Array> => {
    const bytes = await getBlock(cid)
    if (!verifyBlock(cid, bytes))
      throw new CovenantError('HASH_MISMATCH', `the bytes fetched for ${cid} do not hash to it`)
    return bytes
  }
  let root: z.infer<typeof RootSchema>
  try {
    root = RootSchema.parse(dagCbor.decode(await fetch(rootCid)))
  } catch (err) {
    if (err instanceof CovenantError) throw err
    throw new CovenantError('INVALID_OUTPUT', `the root block ${ref.cid} is not a stored output's`, {
      cause: err,
    })
  }
  const expected = Math.ceil(ref.bytes / OUTPUT_CHUNK_BYTES)
  if (root.bytes !== ref.bytes || root.chunks.length !== expected || !isStoredSize(ref.bytes))
    throw new CovenantError(
      'INVALID_OUTPUT',
      `the root block ${ref.cid} describes ${root.bytes} bytes in ${root.chunks.length} chunks, not ${ref.bytes}`,
    )
  const text = new Uint8Array(ref.bytes)
  await Promise.all(
    root.chunks.map(async (link, i) => {
      const cid = CID.asCID(link)!
      if (cid.code !== 0x55)
        throw new CovenantError('INVALID_OUTPUT', `chunk ${i} of ${ref.cid} is not a raw block`)
      const bytes = await fetch(cid)
      const size = Math.min(OUTPUT_CHUNK_BYTES, ref.bytes - i * OUTPUT_CHUNK_BYTES)
      if (bytes.byteLength !== size)
        throw new CovenantError(
          'INVALID_OUTPUT',
          `chunk ${i} of ${ref.cid} is ${bytes.byteLength} bytes, not ${size}`,
        )
      text.set(bytes, i * OUTPUT_CHUNK_BYTES)
    }),
  )
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(text)
  } catch (err) {
    throw new CovenantError('INVALID_OUTPUT', `the stored output ${ref.cid} is not UTF-8 text`, {
      cause: err,
    })
  }
}
