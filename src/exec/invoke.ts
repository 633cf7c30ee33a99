/**
 * The caller side: send a signed request to its executors and collect receipts until q of them,
 * from distinct executors, sign the same output hash. Failing executors are replaced by the next
 * closest eligible ones; disagreeing receipts become conflict evidence when an agreeing executor
 * ran the same sandbox build (another build may honestly compute another output).
 */
import { CovenantError, type ErrorJSON } from '../errors/index.ts'
import type { Certificate, Conflict } from './certificate.ts'
import { type SelectionCandidate, selectExecutors } from './executor-selection.ts'
import { type AttemptOutcome, receiptToJSON } from './json.ts'
import { type Output, outputHash } from './output.ts'
import { type Receipt, verifyReceipt } from './receipt.ts'
import { type SignedRequest, verifyRequest } from './request.ts'
import { type ExecReply, ExecReplySchema } from './wire.ts'

/** Sends one request to one executor and resolves with its reply; rejects with why it could not. */
export type SendExec = (
  peer: string,
  request: SignedRequest,
  options: { timeoutMs: number; signal: AbortSignal },
) => Promise<ExecReply>

export interface InvokeInit {
  request: SignedRequest
  /** the request's id; recomputed and compared when given */
  id?: string
  candidates: readonly SelectionCandidate[]
  /** the function's manifest: tags and publisher drive selection; `exports`, if given, is checked */
  manifest: { tags: readonly string[]; publisher: string; exports?: readonly string[] }
  send: SendExec
  /** must equal the request's k and q when given (they are signed into it) */
  k?: number
  q?: number
  /** how long one executor has to answer. @default the request's timeoutMs + 5 s, within the deadline */
  perExecutorTimeoutMs?: number
  /** @default Date.now */
  now?: () => number
  /** gives up early (NO_QUORUM) */
  signal?: AbortSignal
}

/** One executor asked, and what came of it. JSON-safe. */
export interface Attempt {
  peer: string
  /**
   * agreed: its receipt is in the certificate; disagreed: a valid receipt for another output (see
   * conflicts); disagreed-by-build: a valid receipt for another output, made by a sandbox build
   * none of the agreeing executors ran, so not evidence of a fault; answered: a valid receipt,
   * but no quorum was reached; failed: error, timeout, malformed reply or bad signature;
   * abandoned: still running when the call ended
   */
  outcome: AttemptOutcome
  outputHash?: string
  /** the sandbox build its receipt names */
  build?: string
  error?: ErrorJSON
  ms: number
}

export interface InvokeResult {
  /** `output.value`; when `output.error` is set the function failed and the quorum agrees it did */
  value: unknown
  output: Output
  certificate: Certificate
  conflicts: Conflict[]
  tried: Attempt[]
}

const REPLY_MARGIN_MS = 5_000

function errorJSON(err: unknown): ErrorJSON {
  const e = CovenantError.from(err)
  return { code: e.code, message: e.message }
}

/**
 * Invokes a request on the network through `send`. Resolves once q receipts from distinct
 * executors, each signed by the executor that was asked and each matching the output it came with,
 * share an output hash; never waits for the rest. Throws NO_EXECUTORS if fewer than q peers are
 * eligible and NO_QUORUM (details: `receipts`, `outputHashes`, `tried`) if q matching receipts
 * cannot be had before the candidates or the deadline run out.
 */
export async function invoke(init: InvokeInit): Promise<InvokeResult> {
  const now = init.now ?? Date.now
  const { request, id } = verifyRequest(init.request, now())
  if (init.id !== undefined && init.id !== id)
    throw new CovenantError('INVALID_REQUEST', `the id ${init.id} is not the request's CID ${id}`)
  const { k, q } = request
  if ((init.k !== undefined && init.k !== k) || (init.q !== undefined && init.q !== q))
    throw new CovenantError('INVALID_REQUEST', `k and q are signed into the request as ${k} and ${q}`)
  if (init.manifest.exports !== undefined && !init.manifest.exports.includes(request.export))
    throw new CovenantError(
      'NO_SUCH_EXPORT',
      `the function does not export ${JSON.stringify(request.export)}; it exports ${init.manifest.exports.join(', ')}`,
    )

  const { ordered } = selectExecutors({
    requestId: id,
    manifest: init.manifest,
    limits: request,
    candidates: init.candidates,
    k,
    q,
  })
  const perExecutorMs = init.perExecutorTimeoutMs ?? request.timeoutMs + REPLY_MARGIN_MS

  return new Promise<InvokeResult>((resolve, reject) => {
    const tried: Attempt[] = []
    const inflight = new Map<string, { controller: AbortController; attempt: Attempt; started: number }>()
    /** every receipt that is signed by the peer asked and names this request, in arrival order */
    const receipts: Receipt[] = []
    const groups = new Map<string, { receipts: Receipt[]; output: Output }>()
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
      reject(
        new CovenantError(
          'NO_QUORUM',
          `${why}: ${receipts.length} valid receipts from ${tried.length} executors`,
          {
            details: { id, quorum: q, receipts: receipts.map(receiptToJSON), outputHashes, tried },
          },
        ),
      )
    }

    function succeed(agreedHash: string): void {
      finish()
      const group = groups.get(agreedHash)!
      const agreed = group.receipts.slice(0, q)
      const agreedBy = new Set(agreed.map((r) => r.executor))
      for (const a of tried) if (a.outputHash !== undefined && agreedBy.has(a.peer)) a.outcome = 'agreed'
      const conflicts: Conflict[] = []
      const otherBuild = new Set<string>()
      for (const receipt of receipts) {
        if (receipt.outputHash === agreedHash) continue
        // Only executors on one sandbox build must agree: a receipt is held against the agreeing
        // receipts of its own build, and is no evidence at all if none ran it.
        const sameBuild = agreed.filter((r) => r.build === receipt.build)
        if (sameBuild.length === 0) otherBuild.add(receipt.executor)
        else
          conflicts.push({
            request: id,
            executor: receipt.executor,
            receipt,
            agreedOutputHash: agreedHash,
            agreed: sameBuild,
          })
      }
      for (const a of tried)
        if (a.outcome === 'answered' && a.outputHash !== agreedHash)
          a.outcome = otherBuild.has(a.peer) ? 'disagreed-by-build' : 'disagreed'
      const certificate: Certificate = { request, id, outputHash: agreedHash, receipts: agreed }
      resolve({ value: group.output.value, output: group.output, certificate, conflicts, tried })
    }

    function accept(peer: string, reply: unknown): void {
      const parsed = ExecReplySchema.safeParse(reply)
      if (!parsed.success) throw new CovenantError('PROTOCOL_ERROR', `${peer} sent a malformed reply`)
      const receipt = verifyReceipt(parsed.data.receipt)
      if (receipt.executor !== peer)
        throw new CovenantError('INVALID_SIGNATURE', `${peer} sent a receipt signed by another key`)
      if (receipt.request !== id)
        throw new CovenantError('PROTOCOL_ERROR', `${peer} sent a receipt for another request`)
      // A signed receipt is evidence whatever came with it, so it is kept before the output check.
      receipts.push(receipt)
      if (outputHash(parsed.data.output) !== receipt.outputHash)
        throw new CovenantError('PROTOCOL_ERROR', `${peer} sent an output that does not match its receipt`)
      const group = groups.get(receipt.outputHash) ?? { receipts: [], output: parsed.data.output }
      group.receipts.push(receipt)
      groups.set(receipt.outputHash, group)
    }

    function launch(): void {
      const peer = ordered[next++]
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
      Promise.race([
        Promise.resolve().then(() => init.send(peer, request, { timeoutMs, signal: controller.signal })),
        aborted,
      ])
        .then((reply) => {
          if (done) return
          accept(peer, reply)
          attempt.outcome = 'answered'
          attempt.outputHash = receipts[receipts.length - 1].outputHash
          attempt.build = receipts[receipts.length - 1].build
        })
        .catch((err) => {
          if (done) return
          attempt.outcome = 'failed'
          attempt.error = errorJSON(err)
        })
        .finally(() => {
          clearTimeout(timer)
          if (done) return
          attempt.ms = now() - started
          inflight.delete(peer)
          step()
        })
    }

    /** Decides what to do after every change: accept, ask more executors, or give up. */
    function step(): void {
      let best = 0
      for (const [hash, g] of groups) {
        if (g.receipts.length >= q) {
          succeed(hash)
          return
        }
        best = Math.max(best, g.receipts.length)
      }
      const answered = tried.filter((a) => a.outcome === 'answered').length
      // Keep k executors answering or asked (a failure is replaced), and enough asked that a
      // quorum is still possible when receipts disagree.
      while (next < ordered.length && (answered + inflight.size < k || inflight.size < q - best)) launch()
      if (inflight.size === 0) fail(`no ${q} executors agreed and no eligible executor is left`)
    }

    step()
  })
}
