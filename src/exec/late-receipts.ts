/**
 * Receipts that arrive after the quorum was reached are still evidence: a `wrong-result` executor
 * that answers third would otherwise go unnoticed. Whoever runs `invoke` (a gateway, or the SDK
 * calling executors itself) keeps each executor's request open for {@link replyWindowMs}, past
 * the time `invoke` waits for it, and hands the abandoned executors' replies here; a late receipt
 * for another output, by the certificate's sandbox build, becomes a conflict.
 *
 * Late means up to the request's deadline, not up to the time `invoke` gives an executor: an
 * executor may answer until then (its own run stops a second after it), and a liar that answers
 * after the quorum and after the caller stopped waiting must be caught all the same. A stream that
 * breaks meanwhile (a session or a connection closed on a loaded machine) loses the reply, not the
 * receipt: the executor keeps its replies until the deadline and answers a repeat from them
 * without running again, so the request is sent once more (`askAgain`).
 */
import { CovenantError } from '../errors/index.ts'
import type { Certificate, Conflict } from './certificate.ts'
import type { Attempt } from './invoke.ts'
import { verifyReceipt } from './receipt.ts'
import type { ExecReply } from './wire.ts'

/** How long after a request's deadline its executors may still answer (their runs stop then). */
export const LATE_REPLY_GRACE_MS = 1000

/**
 * How long to keep a request to an executor open: until the request's deadline and the grace
 * after it, and never less than `timeoutMs`, the time `invoke` waits for the executor.
 */
export function replyWindowMs(request: { deadline: number }, timeoutMs: number, now = Date.now()): number {
  return Math.max(timeoutMs, request.deadline + LATE_REPLY_GRACE_MS - now)
}

export interface WatchLateOptions {
  /**
   * sends the request to `peer` once more, when its first request failed with PEER_UNREACHABLE
   * (the stream broke) before the deadline
   */
  askAgain?: (peer: string) => Promise<ExecReply>
  /** @default Date.now */
  now?: () => number
}

/** Calls `onConflict` for each abandoned executor of `tried` whose reply in `pending` contradicts `certificate`. */
export function watchLateReceipts(
  pending: ReadonlyMap<string, Promise<ExecReply>>,
  tried: readonly Attempt[],
  certificate: Certificate,
  onConflict: (conflict: Conflict) => void,
  options: WatchLateOptions = {},
): void {
  const now = options.now ?? Date.now
  const check = (peer: string, r: ExecReply): void => {
    if (!('receipt' in r)) return
    // What could not be evidence is dropped before its signature is checked (the reply's
    // schema parsed it already): a late receipt that agrees, or names another request,
    // executor or build, costs no Ed25519 check.
    const claimed = r.receipt
    if (claimed.executor !== peer || claimed.request !== certificate.id) return
    if (claimed.outputHash === certificate.outputHash) return
    // evidence only against a certificate of its own build (see verifyConflict)
    if (certificate.receipts.some((a) => a.build !== claimed.build)) return
    let receipt: Conflict['receipt']
    try {
      receipt = verifyReceipt(claimed)
    } catch {
      return // an unsigned or foreign late reply proves nothing
    }
    onConflict({ receipt, certificate })
  }
  for (const attempt of tried) {
    if (attempt.outcome !== 'abandoned') continue
    const { peer } = attempt
    const reply = pending.get(peer)
    if (reply === undefined) continue
    reply.then(
      (r) => check(peer, r),
      (err: unknown) => {
        const { askAgain } = options
        if (askAgain === undefined || now() >= certificate.request.deadline) return
        if (CovenantError.from(err).code !== 'PEER_UNREACHABLE') return
        askAgain(peer).then(
          (r) => check(peer, r),
          () => {},
        )
      },
    )
  }
}
