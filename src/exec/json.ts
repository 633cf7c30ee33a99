/**
 * The JSON forms of exec's signed values, for the HTTP API and browsers: the same values with every
 * signature in base64. Each form is its value's schema with the signature fields swapped for
 * base64 strings; `…ToJSON` is the generic {@link bytesFieldsToJSON} and `…FromJSON` reads the
 * signatures back at their paths, then checks the shape (not the signatures: verify for that).
 */
import { z } from 'zod'
import { bytesFieldsFromJSON, bytesFieldsToJSON } from '../encoding/index.ts'
import { CovenantError, type ErrorCode, ErrorJSONSchema, issueCode } from '../errors/index.ts'
import { SignatureJSONSchema } from '../keys/index.ts'
import {
  type Certificate,
  CertificateSchema,
  type Conflict,
  ConflictSchema,
  MAX_SKIPPED,
  PlainCertificateSchema,
  SkipEvidenceSchema,
  SkippedSchema,
} from './certificate.ts'
import { Sha256HexSchema } from './fields.ts'
import type { Attempt } from './invoke.ts'
import { type Receipt, ReceiptSchema } from './receipt.ts'
import { RefusalSchema } from './refusal.ts'
import { MAX_REPLICAS, type SignedRequest, SignedRequestSchema } from './request.ts'

export const SignedRequestJSONSchema = SignedRequestSchema.extend({ signature: SignatureJSONSchema })
export type SignedRequestJSON = z.infer<typeof SignedRequestJSONSchema>

export const ReceiptJSONSchema = ReceiptSchema.extend({ signature: SignatureJSONSchema })
export type ReceiptJSON = z.infer<typeof ReceiptJSONSchema>

const PlainSkippedJSONSchema = z.strictObject({
  peer: SkippedSchema.shape.peer,
  refusal: RefusalSchema.extend({ signature: SignatureJSONSchema }).optional(),
  receipt: ReceiptJSONSchema.optional(),
})

const PlainCertificateJSONSchema = PlainCertificateSchema.extend({
  request: SignedRequestJSONSchema,
  receipts: z.array(ReceiptJSONSchema).min(1).max(MAX_REPLICAS),
  skipped: z.array(PlainSkippedJSONSchema).max(MAX_SKIPPED),
})

const SkippedJSONSchema = PlainSkippedJSONSchema.extend({
  conflict: SkipEvidenceSchema.extend({
    receipt: ReceiptJSONSchema,
    certificate: PlainCertificateJSONSchema,
  }).optional(),
})

export const CertificateJSONSchema = CertificateSchema.extend({
  request: SignedRequestJSONSchema,
  receipts: z.array(ReceiptJSONSchema).min(1).max(MAX_REPLICAS),
  skipped: z.array(SkippedJSONSchema).max(MAX_SKIPPED),
})
export type CertificateJSON = z.infer<typeof CertificateJSONSchema>

export const ConflictJSONSchema = ConflictSchema.extend({
  receipt: ReceiptJSONSchema,
  certificate: CertificateJSONSchema,
})
export type ConflictJSON = z.infer<typeof ConflictJSONSchema>

/** What came of asking one executor; see `Attempt` (invoke.ts). */
export const ATTEMPT_OUTCOMES = [
  'agreed',
  'disagreed',
  'disagreed-by-build',
  'answered',
  'failed',
  'abandoned',
] as const
export type AttemptOutcome = (typeof ATTEMPT_OUTCOMES)[number]

/**
 * One executor a gateway asked, as it reports it (`tried` in `POST /v1/invoke`). An error with a
 * code this side does not know is read as PROTOCOL_ERROR, as everywhere else.
 */
export const AttemptSchema = z.strictObject({
  peer: z.string().max(128),
  outcome: z.enum(ATTEMPT_OUTCOMES),
  outputHash: Sha256HexSchema.optional(),
  build: Sha256HexSchema.optional(),
  error: ErrorJSONSchema.transform((e) => CovenantError.fromJSON(e).toJSON()).optional(),
  ms: z.number().min(0),
}) satisfies z.ZodType<Attempt>

/** Where the bytes are in each value's JSON form, for {@link bytesFieldsFromJSON}. */
const REQUEST_BYTES = ['signature']
const PLAIN_CERTIFICATE_BYTES = [
  'request.signature',
  'receipts[].signature',
  'skipped[].refusal.signature',
  'skipped[].receipt.signature',
]
const CERTIFICATE_BYTES = [
  ...PLAIN_CERTIFICATE_BYTES,
  'skipped[].conflict.receipt.signature',
  ...PLAIN_CERTIFICATE_BYTES.map((p) => `skipped[].conflict.certificate.${p}`),
]
const CONFLICT_BYTES = ['receipt.signature', ...CERTIFICATE_BYTES.map((p) => `certificate.${p}`)]

/**
 * Reads a JSON form with `schema`; a refusal is `code`, or with `ownCodes` the code a failed check
 * names for itself (INVALID_KEY_ID), as where the value itself is parsed.
 */
function fromJSON<S extends z.ZodType>(
  schema: S,
  json: unknown,
  paths: readonly string[],
  code: ErrorCode,
  what: string,
  ownCodes = false,
): z.output<S> {
  const parsed = schema.safeParse(bytesFieldsFromJSON(json, paths))
  if (!parsed.success)
    throw new CovenantError(
      ownCodes ? issueCode(parsed.error, code) : code,
      `malformed ${what}: ${z.prettifyError(parsed.error)}`,
    )
  return parsed.data
}

/** A signed request in its JSON form (signature in base64), as `POST /v1/invoke` carries it. */
export function requestToJSON(request: SignedRequest): SignedRequestJSON {
  return bytesFieldsToJSON(request)
}

/**
 * Reads a signed request from its JSON form; shape only (INVALID_REQUEST, INVALID_KEY_ID), check it
 * with verifyRequest.
 */
export function requestFromJSON(json: unknown): SignedRequest {
  return fromJSON(SignedRequestSchema, json, REQUEST_BYTES, 'INVALID_REQUEST', 'request', true)
}

export function receiptToJSON(receipt: Receipt): ReceiptJSON {
  return bytesFieldsToJSON(receipt)
}

export function certificateToJSON(certificate: Certificate): CertificateJSON {
  return bytesFieldsToJSON(certificate)
}

/** Reads a certificate from its JSON form; shape only (INVALID_CERTIFICATE), check it with verifyCertificate. */
export function certificateFromJSON(json: unknown): Certificate {
  return fromJSON(CertificateSchema, json, CERTIFICATE_BYTES, 'INVALID_CERTIFICATE', 'certificate')
}

export function conflictToJSON(conflict: Conflict): ConflictJSON {
  return bytesFieldsToJSON(conflict)
}

/** Reads conflict evidence from its JSON form; shape only (INVALID_CONFLICT), check it with verifyConflict. */
export function conflictFromJSON(json: unknown): Conflict {
  return fromJSON(ConflictSchema, json, CONFLICT_BYTES, 'INVALID_CONFLICT', 'conflict')
}
