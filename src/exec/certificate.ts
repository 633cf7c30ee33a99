/**
 * Quorum certificates and conflict evidence, and their checks. Standalone: no clock, no network,
 * no `node:` imports of its own, so a browser can check what a node hands it.
 *
 * A certificate proves something only against a view of the network (view.ts): its signers must
 * be the executors the selection rule picks for its request from that view, and every eligible
 * peer ranked ahead of them must be accounted for. A bundle of valid signatures from keys outside
 * the view proves nothing.
 */
import { z } from 'zod'
import { CovenantError, issueCode } from '../errors/index.ts'
import { type Ranking, rankExecutors, type SelectionManifest, thinRanking } from './executor-selection.ts'
import { cidString, KeyIdSchema, Sha256HexSchema } from './fields.ts'
import { type OutputLike, outputHash, outputValue } from './output.ts'
import { type Receipt, ReceiptSchema, verifyReceipt } from './receipt.ts'
import { RefusalSchema, STANDING_REFUSALS, verifyRefusal } from './refusal.ts'
import { checkRequest, DEFAULT_QUORUM, MAX_REPLICAS, SignedRequestSchema } from './request.ts'
import type { View } from './view.ts'

/**
 * What a verifier asks of a certificate beyond its signatures. The verifier sets these, never the
 * caller: a request that asks for q = 1 is refused unless the verifier accepts `minQuorum: 1`.
 */
export const TrustSchema = z.strictObject({
  /** the fewest matching receipts accepted, whatever q the request asked */
  minQuorum: z.number().int().min(1).max(MAX_REPLICAS).default(DEFAULT_QUORUM),
  /**
   * eligible live peers ranked ahead of the quorum that may have been skipped with no proof of why
   * (timed out, unreachable, or a peer the gateway did not know yet)
   */
  maxUnprovenSkips: z.number().int().min(0).max(MAX_REPLICAS).default(1),
  /**
   * the eligible live peers must be at least this share of the live executing peers of the view
   * (and at least k): a request whose limits, tags or publisher leave few peers eligible is refused
   */
  minEligibleFraction: z.number().min(0).max(1).default(0.5),
})
export type Trust = z.output<typeof TrustSchema>
export type TrustInput = z.input<typeof TrustSchema>
/** What a verifier asks unless told otherwise. */
export const DEFAULT_TRUST: Readonly<Trust> = Object.freeze(TrustSchema.parse({}))

/** The most skipped executors a certificate may list. */
export const MAX_SKIPPED = 3 * MAX_REPLICAS

const SkippedShape = {
  peer: KeyIdSchema,
  refusal: RefusalSchema.optional(),
  receipt: ReceiptSchema.optional(),
}

const certificateShape = <S extends z.ZodType>(skipped: S) => ({
  request: SignedRequestSchema,
  id: cidString('dag-cbor'),
  outputHash: Sha256HexSchema,
  receipts: z.array(ReceiptSchema).min(1).max(MAX_REPLICAS),
  skipped: z.array(skipped).max(MAX_SKIPPED),
})

/**
 * A certificate whose skips are proven by refusals and other outputs only: the one conflict
 * evidence carries when it proves a skip, so that proofs nest one level deep and no further.
 */
export const PlainCertificateSchema = z.strictObject(certificateShape(z.strictObject(SkippedShape)))

/**
 * Conflict evidence as a skip carries it (see {@link ConflictSchema}): the skipped executor's
 * receipt for some request, and a certificate for another output of that request.
 */
export const SkipEvidenceSchema = z.strictObject({
  receipt: ReceiptSchema,
  certificate: PlainCertificateSchema,
})
export type SkipEvidence = z.infer<typeof SkipEvidenceSchema>

/**
 * An eligible executor ranked ahead of the certificate's signers that did not sign, with its proof
 * when it has one: its signed refusal, its signed receipt for another output, or conflict evidence
 * against it (from any request: a gateway holding evidence against an executor does not ask it).
 */
export const SkippedSchema = z.strictObject({ ...SkippedShape, conflict: SkipEvidenceSchema.optional() })
export type Skipped = z.infer<typeof SkippedSchema>

/** q receipts from distinct executors for one request, all with the same output hash. */
export const CertificateSchema = z.strictObject(certificateShape(SkippedSchema))
export type Certificate = z.infer<typeof CertificateSchema>

/**
 * Signed proof that `receipt.executor` answered a request with another output than a certificate
 * for the same request, whose receipts were all made by the accused's sandbox build (another build
 * may honestly differ).
 */
export const ConflictSchema = z.strictObject({
  /** the accused executor's receipt */
  receipt: ReceiptSchema,
  /** a certificate for the same request and another output */
  certificate: CertificateSchema,
})
export type Conflict = z.infer<typeof ConflictSchema>

/**
 * The evidence as a skip may carry it, if its certificate's own skips carry none (proofs nest one
 * level deep); otherwise undefined.
 */
export function skipEvidence(conflict: Conflict): SkipEvidence | undefined {
  return conflict.certificate.skipped.some((s) => s.conflict !== undefined) ? undefined : conflict
}

/**
 * The functions whose manifests checking this certificate's skips needs besides its own: the
 * evidence they carry is about other requests (see `manifests` in {@link VerifyCertificateOptions}).
 */
export function evidenceFunctions(certificate: Pick<Certificate, 'request' | 'skipped'>): string[] {
  const fns = new Set<string>()
  for (const s of certificate.skipped)
    if (s.conflict !== undefined && s.conflict.certificate.request.fn !== certificate.request.fn)
      fns.add(s.conflict.certificate.request.fn)
  return [...fns]
}

export interface VerifyCertificateOptions extends TrustInput {
  /** the network as the verifier sees it */
  view: View
  /** the function's manifest (its tags and publisher), fetched by the request's `fn` and checked */
  manifest: SelectionManifest
  /** the output the certificate is claimed for: it must hash to the certificate's outputHash */
  output?: OutputLike
  /**
   * the manifests of other functions (see {@link evidenceFunctions}), for the conflict evidence a
   * skip may carry: a skip whose evidence cannot be checked here counts as unproven
   */
  manifests?: (fn: string) => SelectionManifest | undefined
}

export interface VerifiedCertificate {
  ok: true
  certificate: Certificate
  /** the value `output` carries, when `output` was given with its JSON text (not stored, `ref`) */
  value?: unknown
}

function refuse(message: string, cause?: unknown): never {
  const details = cause instanceof CovenantError ? { cause: cause.toJSON() } : undefined
  throw new CovenantError('INVALID_CERTIFICATE', message, { details, cause })
}

/** The trust options in force: `options`' fields over the defaults (INVALID_INPUT if out of range). */
export function trustOf(options: TrustInput): Trust {
  const parsed = TrustSchema.safeParse({
    minQuorum: options.minQuorum,
    maxUnprovenSkips: options.maxUnprovenSkips,
    minEligibleFraction: options.minEligibleFraction,
  })
  if (!parsed.success)
    throw new CovenantError('INVALID_INPUT', `invalid trust options: ${z.prettifyError(parsed.error)}`)
  return parsed.data
}

/**
 * Whether `skipped` proves why its peer did not sign; throws INVALID_CERTIFICATE for a forged
 * proof. Conflict evidence is checked against the verifier's view like any evidence, and a skip
 * whose evidence does not verify there (another view, a function whose manifest is not at hand)
 * is only unproven: views differ.
 */
function proves(skipped: Skipped, certificate: Certificate, options: VerifyCertificateOptions): boolean {
  const { id } = certificate
  const { peer, refusal, receipt, conflict } = skipped
  if ([refusal, receipt, conflict].filter((p) => p !== undefined).length > 1)
    refuse(`${peer} is skipped with two proofs`)
  if (conflict !== undefined) {
    if (conflict.receipt.executor !== peer) refuse(`the evidence shown for ${peer} accuses another executor`)
    const fn = conflict.certificate.request.fn
    const manifest = fn === certificate.request.fn ? options.manifest : options.manifests?.(fn)
    if (manifest === undefined) return false
    try {
      verifyConflict(conflict, { ...trustOf(options), view: options.view, manifest })
      return true
    } catch {
      return false
    }
  }
  if (refusal !== undefined) {
    try {
      verifyRefusal(refusal)
    } catch (err) {
      refuse(`the refusal of ${peer} does not verify`, err)
    }
    if (refusal.executor !== peer || refusal.request !== id)
      refuse(`the refusal shown for ${peer} is another executor's or another request's`)
    return STANDING_REFUSALS.has(refusal.code)
  }
  if (receipt !== undefined) {
    try {
      verifyReceipt(receipt)
    } catch (err) {
      refuse(`the receipt shown for skipped ${peer} does not verify`, err)
    }
    if (receipt.executor !== peer || receipt.request !== id)
      refuse(`the receipt shown for ${peer} is another executor's or another request's`)
    return true
  }
  return false
}

/**
 * Checks that the signers are the executors the selection rule picks from `view`: each is an
 * eligible peer of the view, and every eligible live peer ranked ahead of the q-th best-ranked
 * signer either signed, or is skipped with a proof (a standing refusal or a receipt for another
 * output), or is one of at most `maxUnprovenSkips` others.
 */
function checkSelection(
  certificate: Certificate,
  quorum: number,
  options: VerifyCertificateOptions,
  trust: Trust,
): Ranking {
  const { request } = certificate
  const ranking = rankExecutors(options.view, request, options.manifest)
  const thin = thinRanking(ranking, request.k, trust.minEligibleFraction)
  if (thin !== undefined) refuse(`the request carves a thin eligible set out of the view: ${thin}`)
  const rankOf = new Map(ranking.ranked.map((peer, i) => [peer, i]))
  const ranks: number[] = []
  for (const { executor } of certificate.receipts) {
    const rank = rankOf.get(executor)
    if (rank === undefined) {
      const reason = ranking.excluded.find((e) => e.peer === executor)?.reason
      refuse(
        reason === undefined
          ? `${executor} is not in the verifier's view of the network`
          : `${executor} may not execute this request: it ${reason}`,
      )
    }
    ranks.push(rank)
  }
  ranks.sort((a, b) => a - b)
  const last = ranks[quorum - 1]
  const signers = new Set(certificate.receipts.map((r) => r.executor))
  const proven = new Set<string>()
  const listed = new Set<string>()
  for (const skipped of certificate.skipped) {
    if (listed.has(skipped.peer)) refuse(`${skipped.peer} is skipped twice`)
    listed.add(skipped.peer)
    if (proves(skipped, certificate, options)) proven.add(skipped.peer)
  }
  const unproven: string[] = []
  for (const peer of ranking.ranked.slice(0, last)) {
    if (signers.has(peer) || proven.has(peer) || options.view.peers.get(peer)?.alive === false) continue
    unproven.push(peer)
  }
  if (unproven.length > trust.maxUnprovenSkips)
    refuse(
      `${unproven.length} eligible executors ranked ahead of the quorum neither signed nor show a ` +
        `standing refusal or another output (${unproven.join(', ')}); at most ${trust.maxUnprovenSkips} accepted`,
    )
  return ranking
}

/** Everything but the selection: the request, the receipts, distinct executors, q. */
function checkSigned(value: unknown, trust: Trust): Certificate {
  const parsed = CertificateSchema.safeParse(value)
  if (!parsed.success)
    refuse(
      `malformed certificate: ${z.prettifyError(parsed.error)}`,
      new CovenantError(issueCode(parsed.error, 'PROTOCOL_ERROR'), 'malformed certificate'),
    )
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
  const q = certificate.request.q
  if (q < trust.minQuorum)
    refuse(`the request asked for q=${q}; this verifier accepts no quorum below ${trust.minQuorum}`)
  if (executors.size < q) refuse(`the certificate has ${executors.size} receipts, ${q} needed`)
  return certificate
}

function check(
  value: unknown,
  options: VerifyCertificateOptions,
): { certificate: Certificate; ranking: Ranking } {
  const trust = trustOf(options)
  const certificate = checkSigned(value, trust)
  return { certificate, ranking: checkSelection(certificate, certificate.request.q, options, trust) }
}

/** The certificate with the value of `output`, once `output` hashes to what it certifies. */
function certifying(certificate: Certificate, output: OutputLike | undefined): VerifiedCertificate {
  if (output === undefined) return { ok: true, certificate }
  let hash: string
  try {
    hash = outputHash(output)
  } catch (err) {
    refuse('the output cannot be hashed', err)
  }
  if (hash !== certificate.outputHash) refuse('the output does not match the certificate')
  let certified: unknown
  try {
    // a stored output's text is checked against its reference when it is read (stored-output.ts)
    certified = output.json === undefined ? undefined : outputValue(output)
  } catch (err) {
    refuse('the certified output is not JSON text', err)
  }
  return { ok: true, certificate, value: certified }
}

/**
 * Checks a quorum certificate against the verifier's view: the request's signature, ticket and
 * bounds, and that `id` is its CID; each receipt's signature, request id and output hash; distinct
 * executors, at least the request's q, and q no less than `minQuorum`; that the signers are the
 * executors the selection rule picks from `view` (see the module comment) and that the view does
 * not leave a thin eligible set; with `output`, that it hashes to the certificate's output hash.
 * It does not look at the deadline: a certificate stays checkable forever. Throws
 * INVALID_CERTIFICATE with the reason (INVALID_INPUT for bad options).
 */
export function verifyCertificate(value: unknown, options: VerifyCertificateOptions): VerifiedCertificate {
  return certifying(check(value, options).certificate, options.output)
}

/**
 * Checks everything {@link verifyCertificate} checks but who the signers are: the request, each
 * receipt's signature, request id and output hash, distinct executors, q no less than
 * `minQuorum`, and `output`. It proves that q distinct keys signed this output for this request,
 * not that they are the executors the selection picks: only a view can tell that. For a record
 * whose run was checked against views when it was new and is read again long after, when those
 * executors may have left every view (a datastore history replayed, docs/apps.md); never for a
 * fresh result. Throws INVALID_CERTIFICATE.
 */
export function verifyCertificateSignatures(
  value: unknown,
  options: { output?: OutputLike; minQuorum?: number },
): VerifiedCertificate {
  return certifying(checkSigned(value, trustOf({ minQuorum: options.minQuorum })), options.output)
}

function refuseConflict(message: string, cause?: unknown): never {
  const details = cause instanceof CovenantError ? { cause: cause.toJSON() } : undefined
  throw new CovenantError('INVALID_CONFLICT', message, { details, cause })
}

/**
 * Checks conflict evidence against the receiver's view: the certificate verifies (see
 * {@link verifyCertificate}); the accused receipt is signed, for the certificate's request, for
 * another output, by an eligible executor of the view; and every receipt of the certificate was
 * made by the accused's sandbox build (so nobody is held to another build's honest output).
 * Throwaway keys can neither accuse nor be accused. Throws INVALID_CONFLICT.
 */
export function verifyConflict(
  value: unknown,
  options: Omit<VerifyCertificateOptions, 'output'>,
): { ok: true; conflict: Conflict } {
  const parsed = ConflictSchema.safeParse(value)
  if (!parsed.success) refuseConflict(`malformed conflict: ${z.prettifyError(parsed.error)}`)
  const conflict = parsed.data
  let checked: { certificate: Certificate; ranking: Ranking }
  try {
    checked = check(conflict.certificate, options)
  } catch (err) {
    refuseConflict(`the certificate does not verify: ${(err as Error).message}`, err)
  }
  const { certificate, ranking } = checked
  let receipt: Receipt
  try {
    receipt = verifyReceipt(conflict.receipt)
  } catch (err) {
    refuseConflict('the accused receipt does not verify', err)
  }
  if (receipt.request !== certificate.id) refuseConflict('the accused receipt is for another request')
  if (receipt.outputHash === certificate.outputHash)
    refuseConflict('the accused receipt agrees with the certificate')
  if (!ranking.ranked.includes(receipt.executor))
    refuseConflict(`${receipt.executor} is not an eligible executor of this request in the receiver's view`)
  for (const r of certificate.receipts)
    if (r.build !== receipt.build)
      refuseConflict(`the receipt of ${r.executor} was made by another sandbox build than the accused's`)
  return { ok: true, conflict }
}
