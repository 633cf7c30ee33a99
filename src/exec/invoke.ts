/**
 * The caller side (a gateway): send a signed request to its executors and collect receipts until
 * q of them, from distinct executors, sign the same output hash. Executors are asked in the order
 * the selection rule gives over the gateway's view; a failing one is replaced by the next, down to
 * the first `2k + maxUnprovenSkips` (the rest would refuse, NOT_SELECTED). The certificate names
 * every executor ranked ahead of its signers that did not sign, with its signed refusal or its
 * receipt for another output when it has one. Disagreeing receipts become conflict evidence when
 * the certificate's executors ran the same sandbox build.
 */
import { CovenantError, type ErrorJSON } from '../errors/index.ts'
import {
  type Certificate,
  type Conflict,
  type SkipEvidence,
  type Skipped,
  type TrustInput,
  trustOf,
} from './certificate.ts'
import { type SelectionManifest, selectExecutors } from './executor-selection.ts'
import { type AttemptOutcome, receiptToJSON } from './json.ts'
import { type Output, outputHash, outputValue } from './output.ts'
import { type Receipt, verifyReceipt } from './receipt.ts'
import { type Refusal, refusalError, STANDING_REFUSALS, verifyRefusal } from './refusal.ts'
import { type SignedRequest, verifyRequest } from './request.ts'
import type { View } from './view.ts'
import type { ExecReply, ExecReplySchema } from './wire.ts'

/**
 * Sends one request to one executor and resolves with its reply as {@link ExecReplySchema} parsed
 * it off the wire (`invoke` does not parse it again; it checks the signatures); rejects with why it
 * could not.
 */
export type SendExec = (
  peer: string,
  request: SignedRequest,
  options: { timeoutMs: number; signal: AbortSignal },
) => Promise<ExecReply>

export interface InvokeInit {
  request: SignedRequest
  /** the request's id; recomputed and compared when given */
  id?: string
  /** the gateway's view of the network: whom it may ask */
  view: View
  /** the function's manifest: tags and publisher drive selection; `exports`, if given, is checked */
  manifest: SelectionManifest & { exports?: readonly string[] }
  send: SendExec
  /**
   * what the caller's verifier will ask of the certificate: a thin eligible set is NO_EXECUTORS
   * here, and a quorum with more unproven skips than it accepts waits for them or is NO_QUORUM
   */
  trust?: TrustInput
  /** how long one executor has to answer. @default the request's timeoutMs + 5 s, within the deadline */
  perExecutorTimeoutMs?: number
  /** @default Date.now */
  now?: () => number
  /** gives up early (NO_QUORUM) */
  signal?: AbortSignal
  /**
   * conflict evidence the gateway holds against a peer: such a peer is not asked, and the
   * certificate lists it as skipped with the evidence as its proof (see `skipEvidence`)
   */
  evidence?: (peer: string) => SkipEvidence | undefined
  /**
   * what NO_QUORUM's `details.divergence` says about the receipts and outputs that came: where the
   * outputs differ (the ledger's `divergenceReport`, which this part cannot import)
   */
  divergence?: (receipts: readonly Receipt[], outputs: readonly Output[]) => unknown
}

/** One executor asked, and what came of it. JSON-safe. */
export interface Attempt {
  peer: string
  /**
   * agreed: its receipt is in the certificate; disagreed: a valid receipt for another output (see
   * conflicts); disagreed-by-build: a valid receipt for another output, made by a sandbox build
   * the certificate's executors did not run, so not evidence of a fault; answered: a valid
   * receipt, but no quorum was reached; failed: a signed refusal, an error, a timeout, a malformed
   * reply or a bad signature; abandoned: still running when the call ended
   */
  outcome: AttemptOutcome
  outputHash?: string
  /** the sandbox build its receipt names */
  build?: string
  error?: ErrorJSON
  ms: number
}

export interface InvokeResult {
  /**
   * the value the output's JSON text holds (undefined here when the text is stored, `output.ref`:
   * the SDK reads it); when `output.error` is set the function failed and the quorum agrees it did
   */
  value: unknown
  output: Output
  certificate: Certificate
  conflicts: Conflict[]
  tried: Attempt[]
}

const REPLY_MARGIN_MS = 5_000
/**
 * An executor that answers PEER_BUSY (its queue or its per-peer slots are full: a plain error or
 * a signed refusal) is asked again after this pause, doubled each time up to
 * {@link BUSY_RETRY_MAX_MS}, within its reply window. Busy proves nothing (it is no standing
 * refusal), so an executor ranked ahead that is busy would otherwise be an unproven skip, and two
 * of them would end the call NO_QUORUM long before its deadline.
 */
const BUSY_RETRY_FIRST_MS = 5
const BUSY_RETRY_MAX_MS = 200

function errorJSON(err: unknown): ErrorJSON {
  const e = CovenantError.from(err)
  return { code: e.code, message: e.message }
}

/**
 * Invokes a request on the network through `send`. Resolves once q receipts from distinct
 * executors, each signed by the executor that was asked and each matching the output it came
 * with, share an output hash and at most `maxUnprovenSkips` executors ranked ahead of them gave
 * no proof of why they did not sign; never waits for the rest. Throws NO_EXECUTORS if the view
 * leaves too few eligible peers and NO_QUORUM (details: `receipts`, `outputHashes`, `tried`) if
 * such a quorum cannot be had before the executors or the deadline run out.
 */
export async function invoke(init: InvokeInit): Promise<InvokeResult> {
  const now = init.now ?? Date.now
  const trust = trustOf(init.trust ?? {})
  const { request, id } = verifyRequest(init.request, now())
  if (init.id !== undefined && init.id !== id)
    throw new CovenantError('INVALID_REQUEST', `the id ${init.id} is not the request's CID ${id}`)
  const { k, q } = request
  if (init.manifest.exports !== undefined && !init.manifest.exports.includes(request.export))
    throw new CovenantError(
      'NO_SUCH_EXPORT',
      `the function does not export ${JSON.stringify(request.export)}; it exports ${init.manifest.exports.join(', ')}`,
    )
  const { ordered } = selectExecutors({
    view: init.view,
    request,
    manifest: init.manifest,
    minEligibleFraction: trust.minEligibleFraction,
  })
  // Executors further down refuse (NOT_SELECTED): their own views do not rank them high enough.
  const ranked = ordered.slice(0, 2 * k + trust.maxUnprovenSkips)
  const rankOf = new Map(ranked.map((peer, i) => [peer, i]))
  const accused = new Map<string, SkipEvidence>()
  for (const peer of ranked) {
    const evidence = init.evidence?.(peer)
    if (evidence !== undefined) accused.set(peer, evidence)
  }
  const candidates = ranked.filter((peer) => !accused.has(peer))
  const perExecutorMs = init.perExecutorTimeoutMs ?? request.timeoutMs + REPLY_MARGIN_MS

  return new Promise<InvokeResult>((resolve, reject) => {
    const tried: Attempt[] = []
    const inflight = new Map<string, { controller: AbortController; attempt: Attempt; started: number }>()
    /** executors in flight that answered busy and wait to be asked again: replaced meanwhile */
    const retrying = new Set<string>()
    /** every receipt that is signed by the peer asked and names this request, in arrival order */
    const receipts: Receipt[] = []
    const refusals = new Map<string, Refusal>()
    /**
     * receipts by output hash, and the output once one came that hashes to it: a receipt counts
     * even if its own output was mangled on the way, as long as another executor sent the output
     */
    const groups = new Map<string, { receipts: Receipt[]; output?: Output }>()
    let next = 0
    let done = false

    const deadlineTimer = setTimeout(
      () => fail(`the deadline passed with no ${q} matching receipts`),
      Math.max(0, request.deadline - now()),
    )
    const onCallerAbort = () => fail('the caller gave up')
    init.signal?.addEventListener('abort', onCallerAbort, { once: true })
    if (init.signal?.aborted) {
      onCallerAbort()
      return
    }

    function finish(): void {
      done = true
      clearTimeout(deadlineTimer)
      init.signal?.removeEventListener('abort', onCallerAbort)
      for (const [, f] of inflight) {
        f.attempt.outcome = 'abandoned'
        f.attempt.ms = now() - f.started
        f.controller.abort(new CovenantError('PEER_TIMEOUT', 'the invocation ended'))
      }
      inflight.clear()
    }

    function fail(why: string): void {
      if (done) return
      finish()
      const outputHashes: Record<string, number> = {}
      for (const [hash, g] of groups) outputHashes[hash] = g.receipts.length
      const details: Record<string, unknown> = {
        id,
        quorum: q,
        receipts: receipts.map(receiptToJSON),
        outputHashes,
        tried,
      }
      if (init.divergence !== undefined && receipts.length > 0)
        details.divergence = init.divergence(
          receipts,
          [...groups.values()].flatMap((g) => (g.output === undefined ? [] : [g.output])),
        )
      // Executors that want paying first: once paid, the same request may well get its quorum.
      const payees = tried.filter((a) => a.error?.code === 'PAYMENT_REQUIRED').map((a) => a.peer)
      const message = `${why}: ${receipts.length} valid receipts from ${tried.length} executors`
      if (payees.length > 0)
        reject(
          new CovenantError('PAYMENT_REQUIRED', `${message}; ${payees.length} refused until paid`, {
            details: { ...details, payees },
          }),
        )
      else reject(new CovenantError('NO_QUORUM', message, { details }))
    }

    /**
     * The certificate for `hash` from its best-ranked q receipts, if the executors ranked ahead of
     * them are accounted for; else the peers that still could be (in flight), or none.
     */
    function judge(hash: string): { certificate: Certificate } | { waitFor: string[] } {
      const group = groups.get(hash)!
      const agreed = [...group.receipts]
        .sort((a, b) => rankOf.get(a.executor)! - rankOf.get(b.executor)!)
        .slice(0, q)
      const signers = new Set(agreed.map((r) => r.executor))
      const last = rankOf.get(agreed[q - 1].executor)!
      const skipped: Skipped[] = []
      const unproven: string[] = []
      for (const peer of ranked.slice(0, last)) {
        if (signers.has(peer)) continue
        const evidence = accused.get(peer)
        if (evidence !== undefined) {
          skipped.push({ peer, conflict: evidence })
          continue
        }
        const refusal = refusals.get(peer)
        const other = receipts.find((r) => r.executor === peer && r.outputHash !== hash)
        if (refusal !== undefined) skipped.push({ peer, refusal })
        else if (other !== undefined) skipped.push({ peer, receipt: other })
        else skipped.push({ peer })
        if (other === undefined && (refusal === undefined || !STANDING_REFUSALS.has(refusal.code)))
          unproven.push(peer)
      }
      if (unproven.length <= trust.maxUnprovenSkips)
        return { certificate: { request, id, outputHash: hash, receipts: agreed, skipped } }
      return { waitFor: unproven.filter((p) => inflight.has(p)) }
    }

    function succeed(certificate: Certificate, output: Output): void {
      let value: unknown
      try {
        // a stored output's value is read from the content network by whoever needs it
        value = output.ref === undefined ? outputValue(output) : undefined
      } catch {
        fail(`${q} executors agreed on an output that is not JSON text`)
        return
      }
      finish()
      const agreedBy = new Set(certificate.receipts.map((r) => r.executor))
      for (const a of tried) if (agreedBy.has(a.peer)) a.outcome = 'agreed'
      // Only executors on one sandbox build must agree: a receipt is evidence only against a
      // certificate whose every receipt ran its build.
      const conflicts: Conflict[] = []
      const otherBuild = new Set<string>()
      for (const receipt of receipts) {
        if (receipt.outputHash === certificate.outputHash) continue
        if (certificate.receipts.every((r) => r.build === receipt.build))
          conflicts.push({ receipt, certificate })
        else otherBuild.add(receipt.executor)
      }
      for (const a of tried)
        if (a.outcome === 'answered' && a.outputHash !== certificate.outputHash)
          a.outcome = otherBuild.has(a.peer) ? 'disagreed-by-build' : 'disagreed'
      resolve({ value, output, certificate, conflicts, tried })
    }

    function accept(peer: string, reply: ExecReply): void {
      if ('refusal' in reply) {
        const refusal = verifyRefusal(reply.refusal)
        if (refusal.executor !== peer)
          throw new CovenantError('INVALID_SIGNATURE', `${peer} sent a refusal signed by another key`)
        if (refusal.request !== id)
          throw new CovenantError('PROTOCOL_ERROR', `${peer} sent a refusal of another request`)
        refusals.set(peer, refusal)
        throw refusalError(refusal)
      }
      const receipt = verifyReceipt(reply.receipt)
      if (receipt.executor !== peer)
        throw new CovenantError('INVALID_SIGNATURE', `${peer} sent a receipt signed by another key`)
      if (receipt.request !== id)
        throw new CovenantError('PROTOCOL_ERROR', `${peer} sent a receipt for another request`)
      // A signed receipt is evidence whatever came with it, so it is kept before the output check.
      receipts.push(receipt)
      const group = groups.get(receipt.outputHash) ?? { receipts: [] }
      group.receipts.push(receipt)
      groups.set(receipt.outputHash, group)
      if (outputHash(reply.output) !== receipt.outputHash)
        throw new CovenantError('PROTOCOL_ERROR', `${peer} sent an output that does not match its receipt`)
      group.output ??= reply.output
    }

    function launch(): void {
      const peer = candidates[next++]
      const started = now()
      const timeoutMs = Math.max(0, Math.min(perExecutorMs, request.deadline - started))
      const controller = new AbortController()
      const attempt: Attempt = { peer, outcome: 'failed', ms: 0 }
      tried.push(attempt)
      inflight.set(peer, { controller, attempt, started })
      const timer = setTimeout(
        () =>
          controller.abort(
            new CovenantError('PEER_TIMEOUT', `${peer} did not answer within ${timeoutMs} ms`),
          ),
        timeoutMs,
      )
      // `send` may ignore the signal; the race makes the timeout hold anyway.
      const aborted = new Promise<never>((_, rej) =>
        controller.signal.addEventListener('abort', () => rej(controller.signal.reason), { once: true }),
      )
      aborted.catch(() => {})
      const ask = (): Promise<void> =>
        Promise.race([
          Promise.resolve().then(() => init.send(peer, request, { timeoutMs, signal: controller.signal })),
          aborted,
        ]).then((reply) => {
          if (done) return
          accept(peer, reply)
          attempt.outcome = 'answered'
          attempt.outputHash = receipts[receipts.length - 1].outputHash
          attempt.build = receipts[receipts.length - 1].build
        })
      const askUntilFree = (pause: number): Promise<void> =>
        ask().catch(async (err: unknown) => {
          if (done || CovenantError.from(err).code !== 'PEER_BUSY') throw err
          if (now() + pause >= Math.min(started + timeoutMs, request.deadline)) throw err
          // its busy refusal is no proof of anything: what it answers next replaces it
          refusals.delete(peer)
          retrying.add(peer)
          step()
          let wake: ReturnType<typeof setTimeout> | undefined
          await Promise.race([new Promise((r) => (wake = setTimeout(r, pause))), aborted]).finally(() =>
            clearTimeout(wake),
          )
          retrying.delete(peer)
          return askUntilFree(Math.min(2 * pause, BUSY_RETRY_MAX_MS))
        })
      askUntilFree(BUSY_RETRY_FIRST_MS)
        .catch((err) => {
          if (done) return
          attempt.outcome = 'failed'
          attempt.error = errorJSON(err)
        })
        .finally(() => {
          clearTimeout(timer)
          retrying.delete(peer)
          if (done) return
          attempt.ms = now() - started
          inflight.delete(peer)
          step()
        })
    }

    /** Decides what to do after every change: accept, ask more executors, wait, or give up. */
    function step(): void {
      let best = 0
      for (const [hash, g] of groups) {
        if (g.receipts.length >= q && g.output !== undefined) {
          const verdict = judge(hash)
          if ('certificate' in verdict) succeed(verdict.certificate, g.output)
          // else wait while executors ranked ahead may still answer and account for themselves
          else if (verdict.waitFor.length === 0)
            fail(
              `${q} executors agreed, but more than ${trust.maxUnprovenSkips} ranked ahead of them gave no proof of why they did not`,
            )
          return
        }
        best = Math.max(best, g.receipts.length)
      }
      const answered = tried.filter((a) => a.outcome === 'answered').length
      // Keep k executors answering or asked (a failure, or one waiting to be asked again, is
      // replaced), and enough asked that a quorum is still possible when receipts disagree.
      const asked = (): number => inflight.size - retrying.size
      while (next < candidates.length && (answered + asked() < k || asked() < q - best)) launch()
      if (inflight.size === 0) fail(`no ${q} executors agreed and no eligible executor is left`)
    }

    step()
  })
}
