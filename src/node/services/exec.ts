/**
 * The exec service, built into every node: exec's node side. It serves the executor over
 * `/covenant/exec/3.0.0` (sandbox worker threads, started when the node is up if its covenant
 * executes), the gateway (`POST /v1/invoke`) that runs the quorum protocol for a caller over
 * libp2p, and conflict evidence (`/covenant/conflict/3.0.0`, `GET /v1/conflicts`, kept in the
 * node's conflict store). Executor, gateway and evidence all judge selection against the node's
 * view (its covenant and its live peers'). A function's `ctx.store.get` is read through the node's
 * `stores` at the versions its request fixes, and the gateway hands a certified run's writes to
 * each namespace's holders through it (see `commitRun`). `src/exec` itself stays network-free and
 * browser-safe.
 */
import { Counter, Gauge, Summary } from 'prom-client'
import {
  type CommitOutcome,
  conflictsRoute,
  type InvokeReply,
  invokeRoute,
  quoteRoute,
} from '../../api/index.ts'
import { parseCid } from '../../content/index.ts'
import { commitRunWrites } from '../../datastore/index.ts'
import { CovenantError } from '../../errors/index.ts'
import {
  type Attempt,
  CONFLICT_PROTOCOL,
  type Conflict,
  ConflictMessageSchema,
  certificateToJSON,
  conflictToJSON,
  createExecutor,
  EXEC_PROTOCOL,
  type ExecReply,
  ExecReplySchema,
  ExecRequestMessageSchema,
  type Executor,
  FAULT_KINDS,
  type FaultKind,
  type InvokeResult,
  invoke,
  LATE_REPLY_GRACE_MS,
  MAX_CONFLICT_BYTES,
  MAX_DEADLINE_AHEAD_MS,
  MAX_EXEC_REPLY_BYTES,
  MAX_EXEC_REQUEST_BYTES,
  receiptToJSON,
  replyWindowMs,
  requestFromJSON,
  requestToJSON,
  type SendExec,
  type SignedRequest,
  selectExecutors,
  type TrustInput,
  trustOf,
  verifyRequest,
  watchLateReceipts,
} from '../../exec/index.ts'
import { divergenceReport, quote } from '../../ledger/index.ts'
import { clearableTimeout, retryTransient } from '../../net/index.ts'
import { createSandbox, type Sandbox } from '../../sandbox/index.ts'
import { route } from '../http.ts'
import type { NodeComponents, NodeService, NodeServiceFactory } from '../service.ts'
import { storeOutput } from './output-store.ts'

export interface ExecServiceOptions {
  /** sandbox worker threads @default the covenant's execute.concurrency */
  workers?: number
  /** what the `crash` fault does @default exits the process */
  onCrash?: () => void
  /** how long a conflict report to one peer may take @default 5000 */
  reportTimeoutMs?: number
}

export type ExecServiceComponents = Pick<
  NodeComponents,
  | 'key'
  | 'peerId'
  | 'covenant'
  | 'net'
  | 'peers'
  | 'getBlock'
  | 'storage'
  | 'manifest'
  | 'view'
  | 'http'
  | 'logger'
  | 'metrics'
  | 'conflicts'
  | 'calls'
  | 'gateway'
  | 'fault'
  | 'ledger'
  | 'stores'
>

// The rpc layer's run timer must outlast the longest call a request may ask for; the executor
// itself stops at the request's deadline. Reading the request has its own, short, timer.
const EXEC_HANDLER_TIMEOUT_MS = MAX_DEADLINE_AHEAD_MS + 10_000

function metricsOf(c: Pick<NodeComponents, 'metrics'>) {
  const registers = [c.metrics.registry]
  return {
    executions: new Counter({
      name: 'covenant_exec_executions_total',
      help: 'exec requests this node served as an executor, by outcome (receipt or error code)',
      labelNames: ['outcome'],
      registers,
    }),
    invocations: new Counter({
      name: 'covenant_exec_invocations_total',
      help: 'invocations this node ran as a gateway, by outcome (ok, function-error or error code)',
      labelNames: ['outcome'],
      registers,
    }),
    attempts: new Counter({
      name: 'covenant_exec_attempts_total',
      help: 'executors asked by this gateway, by attempt outcome',
      labelNames: ['outcome'],
      registers,
    }),
    outputCopies: new Counter({
      name: 'covenant_exec_output_copies_total',
      help: 'copies of large outputs’ blocks on their holders as this executor stored them: sent, or found held already (another executor of the call sent them)',
      labelNames: ['copies'],
      registers,
    }),
    conflicts: new Counter({
      name: 'covenant_exec_conflicts_total',
      help: 'new conflict evidence stored, by where it came from (gateway, late, reported)',
      labelNames: ['source'],
      registers,
    }),
    accounting: new Summary({
      name: 'covenant_exec_accounting_seconds',
      help: 'what accounting adds to a call this executor runs: admitting it against its caller’s credit, then narrowing the hold to its receipt or dropping it',
      percentiles: [0.5, 0.9, 0.99],
      registers,
    }),
  }
}

/** The built-in exec service; `createNode` adds it to every node. */
export function execService(options: ExecServiceOptions = {}): NodeServiceFactory<ExecServiceComponents> {
  return (c) => createExecService(c, options)
}

async function createExecService(
  c: ExecServiceComponents,
  options: ExecServiceOptions,
): Promise<NodeService> {
  const metrics = metricsOf(c)
  const { logger, net, conflicts } = c
  const self = c.peerId

  let fault: FaultKind | undefined
  if (c.fault !== undefined) {
    if ((FAULT_KINDS as readonly string[]).includes(c.fault)) fault = c.fault as FaultKind
    else logger.warn({ event: 'fault-ignored', fault: c.fault, known: FAULT_KINDS })
  }

  // Started when the node is up if its covenant executes (so the first calls find warm workers),
  // else on the first call that reaches it; a node that never executes holds no worker threads.
  let sandbox: Sandbox | undefined
  let stopped = false
  const sandboxPool = (): Sandbox => {
    sandbox ??= createSandbox({ workers: options.workers ?? c.covenant().config.execute.concurrency })
    return sandbox
  }
  const lazySandbox: Pick<Sandbox, 'run'> = { run: (call) => sandboxPool().run(call) }

  const executor: Executor = createExecutor({
    key: c.key,
    sandbox: lazySandbox,
    getBlock: (cid) => c.getBlock(parseCid(cid)),
    read: (ns, key, at) => c.stores.read(ns, key, at),
    covenant: c.covenant,
    view: c.view,
    storeOutput: async (blocks) => {
      const { sent, held } = await storeOutput(c.storage, blocks)
      metrics.outputCopies.inc({ copies: 'sent' }, sent)
      metrics.outputCopies.inc({ copies: 'held' }, held)
    },
    fault,
    // payments: each call is held against its caller's credit with this node
    admit:
      c.ledger === undefined
        ? undefined
        : (request, id) => {
            const started = performance.now()
            const held = c.ledger!.payee.admit({
              id,
              caller: request.caller,
              fuel: request.fuel,
              deadline: request.deadline,
            })
            const admitMs = performance.now() - started
            const timed = (end: () => void) => {
              const t = performance.now()
              end()
              metrics.accounting.observe((admitMs + performance.now() - t) / 1000)
            }
            return {
              signed: (receipt) => timed(() => held.signed(receipt)),
              release: () => timed(() => held.release()),
            }
          },
    onCrash:
      options.onCrash ??
      (() => {
        logger.fatal({ event: 'crash-fault' })
        process.exit(70)
      }),
  })

  new Gauge({
    name: 'covenant_executor_requests',
    help: 'exec requests this executor answered since it started: run, answered again from the replies kept (never run twice), or refused',
    labelNames: ['answer'],
    registers: [c.metrics.registry],
    collect() {
      const s = executor.stats()
      this.set({ answer: 'executed' }, s.executed)
      this.set({ answer: 'replayed' }, s.replayed)
      this.set({ answer: 'refused' }, s.refused)
    },
  })

  /** Runs one exec request here and counts its outcome. */
  async function execute(request: unknown, signal: AbortSignal, from: string): Promise<ExecReply> {
    const started = performance.now()
    try {
      const reply = await executor.execute(request, { signal })
      const outcome = 'refusal' in reply ? reply.refusal.code : 'receipt'
      metrics.executions.inc({ outcome })
      logger.debug({ event: 'execute', from, outcome, ms: performance.now() - started })
      c.calls.executed({ request, from, reply, ms: performance.now() - started })
      return reply
    } catch (err) {
      const e = CovenantError.from(err)
      metrics.executions.inc({ outcome: e.code })
      logger.debug({ event: 'execute', from, outcome: e.code, ms: performance.now() - started })
      c.calls.executed({ request, from, error: e, ms: performance.now() - started })
      throw e
    }
  }

  /** How long a request may run here: until its deadline and a grace, at most the handler's time. */
  function deadlineMs(request: { deadline?: unknown }): number {
    const deadline = typeof request.deadline === 'number' ? request.deadline : Date.now()
    return Math.max(0, Math.min(deadline - Date.now() + LATE_REPLY_GRACE_MS, EXEC_HANDLER_TIMEOUT_MS))
  }

  /** Runs a request a gateway sent, until {@link deadlineMs} or the handler's own signal. */
  function executeUntilDeadline(request: { deadline?: unknown }, signal: AbortSignal, from: string) {
    const timeout = clearableTimeout(deadlineMs(request))
    return execute(request, AbortSignal.any([signal, timeout.signal]), from).finally(timeout.clear)
  }

  /** Stores evidence once it verifies against this node's view; if it is new, tells every live peer. */
  async function takeConflict(conflict: unknown, source: 'gateway' | 'late' | 'reported'): Promise<boolean> {
    let added: boolean
    try {
      added = await conflicts.add(conflict)
    } catch (err) {
      logger.warn({ event: 'conflict-refused', source, code: CovenantError.from(err).code })
      throw err
    }
    if (!added) return false
    const { receipt } = conflict as Conflict
    metrics.conflicts.inc({ source })
    logger.warn({ event: 'conflict', source, request: receipt.request, executor: receipt.executor })
    if (source !== 'reported') report(conflict as Conflict)
    return true
  }

  /** Evidence this gateway found: stored and spread in the background, never failing the call. */
  function keepConflict(conflict: Conflict, source: 'gateway' | 'late'): void {
    takeConflict(conflict, source).catch(() => {})
  }

  /** Tells every live peer of new evidence; a report lost to a busy or broken connection goes again. */
  function report(conflict: Conflict): void {
    for (const peer of c.peers.live())
      void retryTransient(
        () =>
          net.request(
            peer.id,
            CONFLICT_PROTOCOL,
            { conflict },
            { timeoutMs: options.reportTimeoutMs ?? 5000, maxReplyBytes: 1024 },
          ),
        {
          stopped: () => stopped,
          onFailure: (code, attempt) =>
            logger.info({ event: 'conflict-report-failed', peer: peer.id, code, attempt }),
        },
      )
  }

  /**
   * A certified run's writes, handed to the holders of each namespace it wrote (in parallel: each
   * namespace commits on its own, see docs/apps.md), with the standing grants the holders keep for
   * the function. A refusal (WRITE_CONFLICT, a missing grant, the write policy) is reported, not
   * thrown: the value stays certified either way.
   */
  function commitRun(result: InvokeResult): Promise<CommitOutcome[]> {
    return commitRunWrites({ id: result.certificate.id, ...result }, (commit) => c.stores.commit(commit))
  }

  await net.handle(EXEC_PROTOCOL, {
    schema: ExecRequestMessageSchema,
    maxBytes: MAX_EXEC_REQUEST_BYTES,
    readTimeoutMs: 10_000,
    runTimeoutMs: EXEC_HANDLER_TIMEOUT_MS,
    maxPerPeer: 8,
    // a gateway keeps one stream to each executor for all its calls (net/session.ts)
    sessions: true,
    handler: (msg, from, signal) => executeUntilDeadline(msg.request, signal, from),
  })

  await net.handle(CONFLICT_PROTOCOL, {
    schema: ConflictMessageSchema,
    maxBytes: MAX_CONFLICT_BYTES,
    handler: async (msg) => {
      await takeConflict(msg.conflict, 'reported')
      return { ok: true }
    },
  })

  /** Runs the quorum protocol for a checked request: the gateway's work, for its route and for other services. */
  async function runInvocation(
    request: SignedRequest,
    id: string,
    trust: TrustInput | undefined,
    lap: (stage: string) => void,
  ): Promise<InvokeResult> {
    const manifest = await c.manifest(request.fn)
    lap('manifest')
    const pending = new Map<string, Promise<ExecReply>>()
    // Neither the invocation's abort signal nor its timeout for the executor is passed on: an
    // abandoned executor's request stays open until the request's deadline, so a late receipt can
    // still be checked (see watchLateReceipts); invoke stops waiting for it on its own.
    const ask = (peer: string, r: SignedRequest, waitMs = 0): Promise<ExecReply> => {
      const timeoutMs = replyWindowMs(r, waitMs)
      let p: Promise<ExecReply>
      if (peer === self) {
        const timeout = clearableTimeout(timeoutMs)
        p = execute(r, timeout.signal, self).finally(timeout.clear)
      } else
        p = net.request(
          peer,
          EXEC_PROTOCOL,
          { request: r },
          { timeoutMs, maxReplyBytes: MAX_EXEC_REPLY_BYTES, schema: ExecReplySchema, session: true },
        )
      p.catch(() => {})
      return p
    }
    const send: SendExec = (peer, r, { timeoutMs }) => {
      const p = ask(peer, r, timeoutMs)
      pending.set(peer, p)
      return p
    }
    const result = await invoke({
      request,
      id,
      manifest,
      view: c.view(),
      send,
      trust,
      // payments and reputation: accused executors are skipped with their evidence, and a failed
      // quorum says where the outputs differ
      evidence: (peer) => conflicts.evidenceAgainst(peer),
      divergence: divergenceReport,
    })
    lap('quorum')
    for (const a of result.tried) metrics.attempts.inc({ outcome: a.outcome })
    for (const conflict of result.conflicts) keepConflict(conflict, 'gateway')
    watchLateReceipts(
      pending,
      result.tried,
      result.certificate,
      (conflict) => {
        if (!stopped) keepConflict(conflict, 'late')
      },
      {
        askAgain: (peer) =>
          stopped ? Promise.reject(new CovenantError('NOT_STARTED', 'the node stopped')) : ask(peer, request),
      },
    )
    return result
  }

  /**
   * One gateway call, counted, logged and reported to the calls feed however it ends. `run` names
   * the request once it is checked, and may name an outcome other than the run's (a refused commit).
   */
  async function asGateway(
    requestJSON: unknown,
    run: (named: (id: string) => void, judged: (outcome: string) => void) => Promise<InvokeResult>,
  ): Promise<InvokeResult> {
    const started = performance.now()
    let outcome = 'ok'
    let id: string | undefined
    let result: InvokeResult | undefined
    let failure: CovenantError | undefined
    try {
      let judgedAs: string | undefined
      result = await run(
        (named) => {
          id = named
        },
        (o) => {
          judgedAs = o
        },
      )
      if (result.output.error !== null) outcome = 'function-error'
      if (judgedAs !== undefined) outcome = judgedAs
      return result
    } catch (err) {
      const e = CovenantError.from(err)
      failure = e
      outcome = e.code
      const tried = (e.details as { tried?: Attempt[] } | undefined)?.tried
      for (const a of tried ?? []) metrics.attempts.inc({ outcome: a.outcome })
      throw e
    } finally {
      metrics.invocations.inc({ outcome })
      logger.info({ event: 'invoke', id, outcome, ms: Math.round(performance.now() - started) })
      c.calls.gatewayed({ request: requestJSON, result, error: failure, ms: performance.now() - started })
    }
  }

  // Other services (jobs) invoke through this gateway too.
  c.gateway.provide((request, options = {}) =>
    asGateway(requestToJSON(request), async (named) => {
      const { id } = verifyRequest(request)
      named(id)
      return runInvocation(request, id, options.trust, () => {})
    }),
  )

  route(c.http, invokeRoute, async function gateway({ body }, reply) {
    // Stage durations, sent as a Server-Timing header so callers and benches see where time goes.
    const timing: string[] = []
    let mark = performance.now()
    const lap = (stage: string): void => {
      const t = performance.now()
      timing.push(`${stage};dur=${(t - mark).toFixed(2)}`)
      mark = t
    }
    let commits: CommitOutcome[] = []
    let jobs: InvokeReply['jobs']
    const result = await asGateway(body.request, async (named, judged) => {
      const request = requestFromJSON(body.request)
      const { id } = verifyRequest(request)
      named(id)
      lap('request')
      const run = await runInvocation(request, id, body.trust, lap)
      commits = await commitRun(run)
      if (commits.length > 0) lap('commit')
      const refused = commits.find((o) => 'error' in o)
      if (refused !== undefined && 'error' in refused) judged(refused.error.code)
      else if (run.output.error === null && (run.output.jobs?.length ?? 0) > 0) {
        // the jobs it enqueued go with its writes: only once those are committed
        jobs = await c.gateway.enqueue(run).then(
          (handed) => ({ jobs: handed }),
          (err) => ({ error: CovenantError.from(err).toJSON() }),
        )
        lap('jobs')
      }
      return run
    })
    const answer = {
      value: result.value,
      output: result.output,
      certificate: certificateToJSON(result.certificate),
      conflicts: result.conflicts.map(conflictToJSON),
      tried: result.tried,
      commits,
      jobs,
    }
    lap('answer')
    reply.header('server-timing', timing.join(', '))
    return answer
  })

  // ── payments: quotes. The gateway runs the request once (a dry run, signed but certifying
  // nothing, held against the caller's credit like a call) and prices that fuel at the covenants
  // of the executors the selection picks. ──
  route(c.http, quoteRoute, async function quoteCall({ body }) {
    const request = requestFromJSON(body.request)
    verifyRequest(request)
    const manifest = await c.manifest(request.fn)
    const view = c.view()
    const { ordered } = selectExecutors({
      view,
      request,
      manifest,
      minEligibleFraction: trustOf(body.trust).minEligibleFraction,
    })
    const chosen = ordered.filter((peer) => conflicts.evidenceAgainst(peer) === undefined).slice(0, request.k)
    const dry = await executor.dryRun(request, { signal: AbortSignal.timeout(deadlineMs(request)) })
    return {
      fuel: dry.receipt.fuel,
      outcome: dry.output.error?.code ?? 'ok',
      receipt: receiptToJSON(dry.receipt),
      quote: quote({
        fuel: dry.receipt.fuel,
        q: request.q,
        executors: chosen.map((peer) => ({ peer, covenant: view.peers.get(peer)!.covenant })),
      }),
    }
  })

  route(c.http, conflictsRoute, async function conflictEvidence({ query }) {
    return {
      conflicts: conflicts.list(query).map((s) => ({
        conflict: conflictToJSON(s.conflict),
        receivedAt: s.receivedAt,
      })),
    }
  })

  return {
    name: 'exec',
    async start() {
      if (c.covenant().config.execute.enabled) sandboxPool()
    },
    async stop() {
      stopped = true
      executor.stop()
      await net.unhandle(EXEC_PROTOCOL).catch(() => {})
      await net.unhandle(CONFLICT_PROTOCOL).catch(() => {})
      await sandbox?.stop()
    },
  }
}
