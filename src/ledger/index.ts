/**
 * The ledger: payment of executors and storers by the caller, at the prices their covenants set,
 * with no blockchain. Each pair (payer, payee) keeps its own account, on both sides, in SQLite:
 * the payee charges certified receipts and its invoices, the payer settles with signed,
 * cumulative cheques, and the two statements reconcile. Nothing waits for anyone else.
 *
 * Network-free: every input is explicit (a key, a clock, the node's covenant, the checks of
 * certificates and conflicts against the wiring's view of the network), so the node, the SDK and
 * tests wire it alike. Money is whole nano-credits
 * (`formatAmount` / `parseAmount` in the covenant part). See docs/payments.md.
 *
 * @example
 * ```ts
 * // the executor, around each call
 * const admission = payee.admit({ id, caller: request.caller, fuel: request.fuel, deadline: request.deadline })
 * admission.signed(reply.receipt)             // or admission.release() if no receipt came of it
 * // the caller, after a certified run
 * payer.recordCertified(certificate, { covenants })
 * for (const cheque of payer.settle()) payer.acknowledge(payee.applyCheque(cheque).best)
 * payee.recordCertified(certificate)          // handed over with the cheque
 * reconcile(payer.statements(), [payee.statement(payer.payer)]).ok // true
 * ```
 */
export type { Cheque, ChequeJSON, Deposit, DepositJSON } from './cheque.ts'
export {
  ChequeJSONSchema,
  ChequeSchema,
  chequeFromJSON,
  chequeToJSON,
  DepositJSONSchema,
  DepositSchema,
  depositFromJSON,
  depositToJSON,
  signCheque,
  signDeposit,
  verifyCheque,
  verifyDeposit,
} from './cheque.ts'
export type { Difference, DivergenceReport, SignedOutput } from './divergence.ts'
export { DivergenceReportSchema, divergenceReport, firstDifference } from './divergence.ts'
export type { Invoice, InvoiceInit } from './invoice.ts'
export {
  checkInvoicePrice,
  InvoiceSchema,
  invoiceAmount,
  invoiceId,
  MAX_INVOICE_LINES,
  sheetForDay,
  signInvoice,
  verifyInvoice,
} from './invoice.ts'
export type { ChargeRecord, SideInit, SideVerifiers } from './ledger-db.ts'
export type {
  Admission,
  CertifiedCharge,
  ChequeOutcome,
  OverdueAccount,
  PayeeAccount,
  PayeeLedger,
  PayeeLedgerInit,
  PayeeLedgerOptions,
} from './payee-ledger.ts'
export { openPayeeLedger, payeeLedgerOptionsSchema } from './payee-ledger.ts'
export type {
  PayerAccount,
  PayerCertifiedCharge,
  PayerCharge,
  PayerLedger,
  PayerLedgerInit,
  PayerLedgerOptions,
} from './payer-ledger.ts'
export { openPayerLedger, payerLedgerOptionsSchema } from './payer-ledger.ts'
export type { PriceSheet, Quote, QuoteInit } from './pricing.ts'
export {
  AmountSchema,
  addAmounts,
  chargeFor,
  DAY_MS,
  multiplyAmounts,
  PriceSheetSchema,
  priceSheet,
  QuoteSchema,
  quote,
  serveCharge,
  storageCharge,
  utcDay,
} from './pricing.ts'
export type { PairReconciliation, PairStatement } from './reconcile.ts'
export { reconcile } from './reconcile.ts'
export type { CertifiedStatus, PayMessage, PayMessageJSON, PayReply, PayReplyInput } from './wire.ts'
export {
  CERTIFIED_STATUSES,
  ChargeRecordSchema,
  certificateSize,
  MAX_PAY_BYTES,
  MAX_PAY_CERTIFICATES,
  MAX_PAY_INVOICES,
  PAY_PROTOCOL,
  PayeeAccountSchema,
  PayMessageJSONSchema,
  PayMessageSchema,
  PayReplyJSONSchema,
  PayReplySchema,
  payMessageFromJSON,
  payMessageToJSON,
  payReplyFromJSON,
  payReplyToJSON,
} from './wire.ts'
