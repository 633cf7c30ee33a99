/**
 * Sending again what a busy or broken connection lost. Only the network's own transient failures
 * are worth another try: a peer that answered with a refusal would refuse the same message again.
 */
import { CovenantError } from '../errors/index.ts'

/** The failures of a request that say nothing of the message: the peer was busy, slow or cut off. */
export const TRANSIENT_CODES: ReadonlySet<string> = new Set(['PEER_BUSY', 'PEER_TIMEOUT', 'PEER_UNREACHABLE'])

export interface RetryInit {
  /** tries in all, the first included @default 4 */
  tries?: number
  /** the wait before the second try, doubling after each @default 1000 */
  baseMs?: number
  /** stop trying once this says so (the process is stopping) */
  stopped?: () => boolean
  /** told of each failed try, with its code */
  onFailure?: (code: string, attempt: number) => void
}

/**
 * Calls `send` until it resolves, it fails with a code other than a transient one, `tries` run
 * out or `stopped()`; resolves with whether it got through. Never rejects.
 */
export async function retryTransient(send: () => Promise<unknown>, init: RetryInit = {}): Promise<boolean> {
  const tries = init.tries ?? 4
  const baseMs = init.baseMs ?? 1000
  for (let attempt = 0; attempt < tries; attempt++) {
    if (init.stopped?.()) return false
    try {
      await send()
      return true
    } catch (err) {
      const code = CovenantError.from(err).code
      init.onFailure?.(code, attempt)
      if (!TRANSIENT_CODES.has(code) || attempt + 1 >= tries) return false
      await new Promise((r) => setTimeout(r, baseMs * 2 ** attempt).unref())
    }
  }
  return false
}
