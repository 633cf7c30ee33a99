/**
 * Quorum certificates and conflict evidence, and their checks. Standalone: no clock, no network,
 * no `node:` imports of its own, so a browser can check what a node hands it.
 */
import { z } from 'zod'
import { CovenantError } from '../errors/index.ts'
import { type SelectionCandidate, selectExecutors } from './executor-selection.ts'
import { cidString, KeyIdSchema, Sha256HexSchema } from './fields.ts'
import { type OutputLike, outputHash } from './output.ts'
import { type Receipt, ReceiptSchema, verifyReceipt } from './receipt.ts'
import { checkRequest, MAX_REPLICAS, SignedRequestSchema } from './request.ts'

/** q receipts from distinct executors for one request, all with the same output hash. */
export const CertificateSchema = z.strictObject({
  request: SignedRequestSchema,
  id: cidString('dag-cbor'),
  outputHash: Sha256HexSchema,
  receipts: z.array(ReceiptSchema).min(1).max(MAX_REPLICAS),
})
export type Certificate = z.infer<typeof CertificateSchema>

/**
 * Signed proof that `executor` answered request `request` with an output hash other than the one
 * the executors in `agreed` (of a quorum, in the caller's view) signed on the same sandbox build.
 * Receipts of other builds are left out of `agreed`: another build may honestly differ.
 */
export const ConflictSchema = z.strictObject({
  request: cidString('dag-cbor'),
  executor: KeyIdSchema,
  receipt: ReceiptSchema,
  agreedOutputHash: Sha256HexSchema,
  agreed: z.array(ReceiptSchema).min(1).max(MAX_REPLICAS),
})
export type Conflict = z.infer<typeof ConflictSchema>

export interface VerifyCertificateOptions {
  /** receipts needed; default the request's q */
  quorum?: number
  /** the peers known with their covenants: every executor must be eligible by the selection rule */
  candidates?: readonly SelectionCandidate[]
  /** the function's manifest (tags and publisher); required with `candidates` */
  manifest?: { tags: readonly string[]; publisher: string }
  /** the output the certificate is claimed for: it must hash to the certificate's outputHash */
  output?: OutputLike
}

export interface VerifiedCertificate {
  ok: true
  certificate: Certificate
  /** `output.value` when `output` was given */
  value?: unknown
}

function refuse(message: string, cause?: unknown): never {
  const details = cause instanceof CovenantError ? { cause: cause.toJSON() } : undefined
  throw new CovenantError('INVALID_CERTIFICATE', message, { details, cause })
}

/**
 * Checks a quorum certificate on its own: the request's signature and that `id` is its CID; each
 * receipt's signature, request id and output hash; distinct executors; at least `quorum` (default
 * the request's q) receipts; with `candidates` (and `manifest`) that each executor is eligible by
 * the selection rule; with `output` that it hashes to the certificate's output hash. It does not
 * look at the deadline: a certificate stays checkable forever. Throws INVALID_CERTIFICATE.
 */
export function verifyCertificate(
  value: unknown,
  options: VerifyCertificateOptions = {},
): VerifiedCertificate {
  const parsed = CertificateSchema.safeParse(value)
  if (!parsed.success) refuse(`malformed certificate: ${z.prettifyError(parsed.error)}`)
  const certificate = parsed.data
  let id: string
  try {
    id = checkRequest(certificate.request).id
  } catch (err) {
    refuse(`the certificate's request does not verify: ${(err as Error).message}`, err)
  }
  if (id !== certificate.id) refuse(`the certificate's id ${certificate.id} is not its request's CID ${id}`)
  const executors = new Set<string>()
  for (const receipt of certificate.receipts) {
    try {
      verifyReceipt(receipt)
    } catch (err) {
      refuse(`the receipt of ${receipt.executor} does not verify`, err)
    }
    if (receipt.request !== id) refuse(`the receipt of ${receipt.executor} is for another request`)
    if (receipt.outputHash !== certificate.outputHash)
      refuse(`the receipt of ${receipt.executor} is for another output`)
    if (executors.has(receipt.executor)) refuse(`${receipt.executor} signed more than one receipt`)
    executors.add(receipt.executor)
  }
  const quorum = options.quorum ?? certificate.request.q
  if (executors.size < quorum) refuse(`the certificate has ${executors.size} receipts, ${quorum} needed`)
  if (options.candidates !== undefined) {
    if (options.manifest === undefined)
      throw new CovenantError('INVALID_INPUT', 'checking executors against candidates needs the manifest')
    const { ordered } = selectExecutors({
      requestId: id,
      manifest: options.manifest,
      limits: certificate.request,
      candidates: options.candidates,
      k: certificate.request.k,
      q: 0,
    })
    const eligible = new Set(ordered)
    for (const executor of executors)
      if (!eligible.has(executor)) refuse(`${executor} is not an eligible executor of this request`)
  }
  if (options.output !== undefined) {
    let hash: string
    try {
      hash = outputHash(options.output)
    } catch (err) {
      refuse('the output cannot be hashed', err)
    }
    if (hash !== certificate.outputHash) refuse('the output does not match the certificate')
    return { ok: true, certificate, value: options.output.value ?? null }
  }
  return { ok: true, certificate }
}

function refuseConflict(message: string, cause?: unknown): never {
  throw new CovenantError('INVALID_CONFLICT', message, { cause })
}

function checkSigned(receipt: Receipt, what: string): void {
  try {
    verifyReceipt(receipt)
  } catch (err) {
    refuseConflict(`${what} does not verify`, err)
  }
}

/**
 * Checks conflict evidence: the accused receipt and every agreeing receipt are signed, all are for
 * `conflict.request`, the agreeing ones (from distinct executors, not the accused) share
 * `agreedOutputHash` and the accused's differs, and all were made by the accused's sandbox build
 * (so an executor cannot be framed with the honest output of another build). With `certificate`,
 * also that it verifies and is the quorum for the same request and hash. Throws INVALID_CONFLICT.
 */
export function verifyConflict(value: unknown, certificate?: unknown): { ok: true; conflict: Conflict } {
  const parsed = ConflictSchema.safeParse(value)
  if (!parsed.success) refuseConflict(`malformed conflict: ${z.prettifyError(parsed.error)}`)
  const conflict = parsed.data
  checkSigned(conflict.receipt, 'the accused receipt')
  if (conflict.receipt.executor !== conflict.executor)
    refuseConflict('the accused receipt is signed by another executor')
  if (conflict.receipt.request !== conflict.request)
    refuseConflict('the accused receipt is for another request')
  if (conflict.receipt.outputHash === conflict.agreedOutputHash)
    refuseConflict('the accused receipt agrees with the quorum')
  const agreeing = new Set<string>()
  for (const receipt of conflict.agreed) {
    checkSigned(receipt, `the receipt of ${receipt.executor}`)
    if (receipt.request !== conflict.request)
      refuseConflict(`the receipt of ${receipt.executor} is for another request`)
    if (receipt.outputHash !== conflict.agreedOutputHash)
      refuseConflict(`the receipt of ${receipt.executor} is not for the agreed output`)
    if (receipt.build !== conflict.receipt.build)
      refuseConflict(
        `the receipt of ${receipt.executor} was made by another sandbox build than the accused's`,
      )
    if (receipt.executor === conflict.executor || agreeing.has(receipt.executor))
      refuseConflict(`${receipt.executor} appears twice`)
    agreeing.add(receipt.executor)
  }
  if (certificate !== undefined) {
    let cert: Certificate
    try {
      cert = verifyCertificate(certificate).certificate
    } catch (err) {
      refuseConflict('the certificate does not verify', err)
    }
    if (cert.id !== conflict.request) refuseConflict('the certificate is for another request')
    if (cert.outputHash !== conflict.agreedOutputHash) refuseConflict('the certificate is for another output')
  }
  return { ok: true, conflict }
}
