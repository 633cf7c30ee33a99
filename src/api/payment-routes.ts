/** Payments through a node: the pay exchange relayed to payees, quotes, and this node's accounts. */
import { z } from 'zod'
import { ErrorJSONSchema } from '../errors/index.ts'
import { ReceiptJSONSchema, TrustSchema } from '../exec/index.ts'
import { KeyIdSchema } from '../keys/index.ts'
import {
  ChargeRecordSchema,
  MAX_PAY_BYTES,
  PayeeAccountSchema,
  PayMessageJSONSchema,
  PayReplyJSONSchema,
  QuoteSchema,
} from '../ledger/index.ts'
import type { RouteSpec } from './route.ts'

/**
 * Body of `POST /v1/pay`: pay messages (the pay protocol's, in JSON form), each naming its payee.
 * The node handles those made out to itself and relays the others over `/covenant/pay/1.0.0`.
 */
export const PayBodySchema = z.strictObject({
  payments: z
    .array(PayMessageJSONSchema.extend({ payee: KeyIdSchema }))
    .min(1)
    .max(64),
})

export const PayResultsSchema = z.object({
  /** one per payment, in order: the payee's reply (read it with `payReplyFromJSON`), or why none came */
  results: z
    .array(
      z.union([
        z.object({ payee: z.string(), reply: PayReplyJSONSchema }),
        z.object({ payee: z.string(), error: ErrorJSONSchema }),
      ]),
    )
    .max(64),
})

/** `POST /v1/pay`: hands each payee its pay message (relayed over libp2p) and returns the replies. */
export const payRoute = {
  method: 'POST',
  path: '/v1/pay',
  body: PayBodySchema,
  reply: PayResultsSchema,
  // a few payees' messages, each up to MAX_PAY_BYTES (JSON is a little larger than DAG-CBOR)
  bodyLimit: 2 * MAX_PAY_BYTES,
} as const satisfies RouteSpec

/** Body of `POST /v1/quote`: a signed request as for `POST /v1/invoke`, which is run once, not certified. */
export const QuoteBodySchema = z.strictObject({ request: z.unknown(), trust: TrustSchema.prefault({}) })

export const QuoteReplySchema = z.object({
  /** the fuel the dry run used */
  fuel: z.number().int().min(0),
  /** `ok`, or the code the function failed with (at this fuel limit, say) */
  outcome: z.string().max(64),
  /** the gateway's signed receipt for its dry run: the fuel is its word, signed */
  receipt: ReceiptJSONSchema,
  /** each selected executor's charge for that fuel, and the least and most a certificate costs */
  quote: QuoteSchema,
})

/** `POST /v1/quote`: the gateway runs the request once and prices it at the selected executors' covenants. */
export const quoteRoute = {
  method: 'POST',
  path: '/v1/quote',
  body: QuoteBodySchema,
  reply: QuoteReplySchema,
  bodyLimit: 4 * 1024 * 1024,
} as const satisfies RouteSpec

export const AccountsQuerySchema = z.strictObject({
  /** at most this many @default 100 */
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  /** payers after this key id (exclusive), for the next page */
  after: KeyIdSchema.optional(),
})

export const AccountsReplySchema = z.object({ accounts: z.array(PayeeAccountSchema) })

/** `GET /v1/accounts`: this node's accounts with its payers, in payer order. */
export const accountsRoute = {
  method: 'GET',
  path: '/v1/accounts',
  query: AccountsQuerySchema,
  reply: AccountsReplySchema,
} as const satisfies RouteSpec

export const AccountParamsSchema = z.strictObject({ payer: KeyIdSchema })
export const AccountQuerySchema = z.strictObject({
  /** at most this many charges, newest first @default 100 */
  limit: z.coerce.number().int().min(1).max(1000).optional(),
  /** charges before this ms timestamp, for the next page */
  before: z.coerce.number().int().min(0).optional(),
})

export const AccountReplySchema = z.object({
  account: PayeeAccountSchema,
  /** its charges here, newest first, each with its certificate or invoice id */
  history: z.array(ChargeRecordSchema),
})

/** `GET /v1/accounts/:payer`: one payer's account with this node, and its charges. */
export const accountRoute = {
  method: 'GET',
  path: '/v1/accounts/:payer',
  params: AccountParamsSchema,
  query: AccountQuerySchema,
  reply: AccountReplySchema,
} as const satisfies RouteSpec

const PairStatementSchema = z.object({
  payer: z.string(),
  payee: z.string(),
  charged: z.number().int(),
  paid: z.number().int(),
  granted: z.number().int(),
})

export const OwedReplySchema = z.object({
  /** this node's key id, as a payer */
  payer: z.string(),
  /**
   * what it owes and paid each payee, as its payer ledger states it: the executors of the job
   * attempts it dispatched, whose requests it signed (compare with each payee's `GET /v1/accounts`)
   */
  statements: z.array(PairStatementSchema).max(10_000),
})

/** `GET /v1/owed`: this node's side as a payer, pair by pair (`reconcile` takes it as it is). */
export const owedRoute = {
  method: 'GET',
  path: '/v1/owed',
  reply: OwedReplySchema,
} as const satisfies RouteSpec
