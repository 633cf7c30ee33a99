/**
 * Receipts that arrive after the quorum was reached are still evidence: a `wrong-result` executor
 * that answers third would otherwise go unnoticed. Whoever runs `invoke` (a gateway, or the SDK
 * calling executors itself) keeps the abandoned executors' requests open until their own timeout
 * and hands their replies here; a late receipt for another output, by the certificate's sandbox
 * build, becomes a conflict.
 */
import type { Certificate, Conflict } from './certificate.ts'
import type { Attempt } from './invoke.ts'
import { verifyReceipt } from './receipt.ts'
import type { ExecReply } from './wire.ts'

/** Calls `onConflict` for each abandoned executor of `tried` whose reply in `pending` contradicts `certificate`. */
export function watchLateReceipts(
  pending: ReadonlyMap<string, Promise<ExecReply>>,
  tried: readonly Attempt[],
  certificate: Certificate,
  onConflict: (conflict: Conflict) => void,
): void {
  for (const attempt of tried) {
    if (attempt.outcome !== 'abandoned') continue
    const reply = pending.get(attempt.peer)
    if (reply === undefined) continue
    reply.then(
      (r) => {
        if (!('receipt' in r)) return
        // What could not be evidence is dropped before its signature is checked (the reply's
        // schema parsed it already): a late receipt that agrees, or names another request,
        // executor or build, costs no Ed25519 check.
        const claimed = r.receipt
        if (claimed.executor !== attempt.peer || claimed.request !== certificate.id) return
        if (claimed.outputHash === certificate.outputHash) return
        // evidence only against a certificate of its own build (see verifyConflict)
        if (certificate.receipts.some((a) => a.build !== claimed.build)) return
        try {
          onConflict({ receipt: verifyReceipt(claimed), certificate })
        } catch {
          // an unsigned or foreign late reply proves nothing
        }
      },
      () => {},
    )
  }
}
