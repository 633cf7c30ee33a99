/**
 * Reconciliation: each side of a pair states what it counts, and the two statements must agree.
 * Nothing here trusts either side; it only says where they differ.
 */

/** What one side counts for one (payer, payee) pair, in ncr. */
export interface PairStatement {
  payer: string
  payee: string
  /** certified calls and invoices charged */
  charged: number
  /** the payer's view: its newest cheque's cumulative amount; the payee's: the best cheque held */
  paid: number
  /** faucet deposits */
  granted: number
}

export interface PairReconciliation {
  payer: string
  payee: string
  ok: boolean
  /** `undefined` when that side has no statement for the pair */
  payerSays?: PairStatement
  payeeSays?: PairStatement
  /** each field on which the sides differ, as `field: payer says X, payee says Y` */
  differences: string[]
}

const FIELDS = ['charged', 'paid', 'granted'] as const

const pairKey = (s: Pick<PairStatement, 'payer' | 'payee'>) => `${s.payer} ${s.payee}`

/**
 * Compares payers' and payees' statements pair by pair. A pair only one side states is compared
 * with zeros (a payee that was never paid nor charged may hold no account).
 */
export function reconcile(
  payerSide: readonly PairStatement[],
  payeeSide: readonly PairStatement[],
): { ok: boolean; pairs: PairReconciliation[] } {
  const pairs = new Map<string, PairReconciliation>()
  const entry = (s: PairStatement) => {
    const key = pairKey(s)
    let p = pairs.get(key)
    if (p === undefined) {
      p = { payer: s.payer, payee: s.payee, ok: true, differences: [] }
      pairs.set(key, p)
    }
    return p
  }
  for (const s of payerSide) entry(s).payerSays = s
  for (const s of payeeSide) entry(s).payeeSays = s
  for (const p of pairs.values()) {
    for (const field of FIELDS) {
      const a = p.payerSays?.[field] ?? 0
      const b = p.payeeSays?.[field] ?? 0
      if (a !== b) p.differences.push(`${field}: payer says ${a}, payee says ${b}`)
    }
    p.ok = p.differences.length === 0
  }
  const list = [...pairs.values()]
  return { ok: list.every((p) => p.ok), pairs: list }
}
