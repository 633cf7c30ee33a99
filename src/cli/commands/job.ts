/**
 * `covenant job …`: jobs from the command line. `enqueue` hands a job to the network and prints
 * its id at once; `status`, `wait`, `list` and `cancel` find it again later, from any node. Every
 * subcommand takes `--node URL` and `--json` (exactly one JSON object on stdout).
 */
import type { Command } from 'commander'
import { type CovenantClient, connect, type JobInfo, keyId, loadCallerKey } from '../../client/index.ts'
import { formatAmount, parseAmount } from '../../covenant/index.ts'
import { CovenantError } from '../../errors/index.ts'
import { certificateToJSON } from '../../exec/index.ts'
import { JOB_STATUSES } from '../../jobs/index.ts'
import { parseArg, parseIntOption, printError, printJson, printValue, runCommand } from '../output.ts'
import { parseDuration } from './store.ts'

interface CommonOptions {
  node?: string
  nodes?: string
  json?: boolean
}

const collect = (value: string, previous: string[]): string[] => [...previous, value]

function common(command: Command): Command {
  return command
    .option('--node <url>', 'node HTTP API (default: the local devnet)')
    .option(
      '--nodes <urls>',
      'comma-separated node URLs: the view certificates are checked against, and the nodes `list` asks (default: every node of the local devnet)',
    )
    .option('--json', 'print one JSON object')
}

function session(opts: CommonOptions): Promise<CovenantClient> {
  const nodes = opts.nodes
    ?.split(',')
    .map((u) => u.trim())
    .filter((u) => u !== '')
  return connect({ node: opts.node, nodes })
}

/** `2s`, `5m`: a duration; a bare number is milliseconds. */
function durationMs(text: string): number {
  return /^\d+$/.test(text) ? Number(text) : parseDuration(text)
}

const time = (ms: number): string => new Date(ms).toISOString()

/** A job's state for a person: one line, then its attempts. */
function describeJob(info: JobInfo): string {
  const lines = [
    `${info.id}  ${info.status}  ${info.export} of ${info.fn}`,
    `  enqueued by ${info.enqueuer} at ${time(info.createdAt)}; runs after ${time(info.runAfter)}, until ${time(info.deadline)}`,
    `  attempts ${info.started}, failed ${info.failures} of ${info.retries + 1} allowed, write conflicts ${info.conflicts}; keepers ${info.keepers.map((k) => k.slice(-8)).join(' ')}`,
    `  charged ${formatAmount(info.paid.reduce((n, c) => n + c.amount, 0))} of its budget of ${formatAmount(info.budget)}`,
  ]
  if (info.status === 'queued') lines.push(`  next attempt at ${time(info.runAt)}`)
  if (info.status === 'running')
    lines.push(`  dispatched by ${info.dispatcher}, lease until ${time(info.runAt)}`)
  for (const a of info.attempts)
    lines.push(
      `  #${a.n} ${a.outcome} by ${a.dispatcher.slice(-8)} at ${time(a.startedAt)}` +
        `${a.error === null ? '' : `: ${a.error.code} ${a.error.message}`}, ${a.receipts.length} receipt(s)`,
    )
  if (info.error !== null) lines.push(`  error ${info.error.code}: ${info.error.message}`)
  if (info.result !== null) lines.push(`  value ${info.result.output.json}`)
  return `${lines.join('\n')}\n`
}

export function register(program: Command): void {
  const job = program
    .command('job')
    .description('jobs: runs the network finishes later, at least once, with effects committed exactly once')

  common(
    job
      .command('enqueue <cid> <export> [args...]')
      .description('hand a job to the network; prints its id as soon as its keepers hold it')
      .option('--replicas <k>', 'executors per attempt', parseIntOption('--replicas'))
      .option('--quorum <q>', 'matching receipts needed', parseIntOption('--quorum'))
      .option('--fuel <n>', 'fuel limit per attempt, in sandbox ticks', parseIntOption('--fuel'))
      .option('--memory <MiB>', 'memory limit per attempt', parseIntOption('--memory'))
      .option('--timeout <ms>', 'wall-clock limit per attempt and executor', parseIntOption('--timeout'))
      .option('--run-after <duration>', 'first attempt no sooner than this from now: 30s, 10m, 2h, 1d')
      .option(
        '--retries <n>',
        'attempts after the first that may fail (default 3)',
        parseIntOption('--retries'),
      )
      .option('--window <duration>', 'how long after --run-after it may keep trying (default 1h)')
      .option(
        '--budget <amount>',
        'the most the job may cost you: ncr, or with a unit (0.01 cr); default every try at the default price',
        (text: string) => {
          const amount = parseAmount(text)
          if (amount === undefined)
            throw new CovenantError('INVALID_INPUT', `--budget is an amount (1000, 0.01 cr): ${text}`)
          return amount
        },
      )
      .option('--store <ns>', 'a namespace the function reads (repeatable)', collect, [])
      .option('--key <file>', 'enqueuer key file (default: $COVENANT_HOME/key)')
      .option('--wait', 'then wait for its result and print it, as `job wait` does'),
  ).action(
    async (
      cid: string,
      exportName: string,
      rawArgs: string[],
      opts: CommonOptions & {
        replicas?: number
        quorum?: number
        fuel?: number
        memory?: number
        timeout?: number
        runAfter?: string
        retries?: number
        window?: string
        budget?: number
        store: string[]
        key?: string
        wait?: boolean
      },
    ) => {
      await runCommand(opts.json === true, async () => {
        const args = rawArgs.map(parseArg)
        const net = await session(opts)
        const key = await loadCallerKey(opts.key)
        const enqueued = await net.enqueue(cid, exportName, args, {
          replicas: opts.replicas,
          quorum: opts.quorum,
          fuel: opts.fuel,
          memoryMiB: opts.memory,
          timeoutMs: opts.timeout,
          runAfterMs: opts.runAfter === undefined ? undefined : durationMs(opts.runAfter),
          retries: opts.retries,
          windowMs: opts.window === undefined ? undefined : durationMs(opts.window),
          stores: opts.store,
          budget: opts.budget,
          key,
        })
        if (opts.wait === true) {
          process.stderr.write(`job ${enqueued.id}\n`)
          await waitFor(net, enqueued.id, opts.json === true)
          return
        }
        if (opts.json === true) printJson({ ok: true, ...enqueued })
        else {
          process.stdout.write(`${enqueued.id}\n`)
          process.stderr.write(`kept by ${enqueued.keepers.length}/${enqueued.wanted} nodes\n`)
        }
      })
    },
  )

  common(job.command('status <id>').description('the job’s state, as its keepers hold it')).action(
    async (id: string, opts: CommonOptions) => {
      await runCommand(opts.json === true, async () => {
        const info = await (await session(opts)).job(id).status()
        if (opts.json === true) printJson({ ok: true, job: info })
        else process.stdout.write(describeJob(info))
      })
    },
  )

  common(
    job
      .command('wait <id>')
      .description(
        'wait until the job ends; prints the value the quorum certified (checked against your view), or its error',
      )
      .option('--timeout <duration>', 'give up after this long: 30s, 10m (default: the job’s deadline)'),
  ).action(async (id: string, opts: CommonOptions & { timeout?: string }) => {
    await runCommand(opts.json === true, async () => {
      const net = await session(opts)
      await waitFor(
        net,
        id,
        opts.json === true,
        opts.timeout === undefined ? undefined : durationMs(opts.timeout),
      )
    })
  })

  common(
    job
      .command('list')
      .description('the jobs the nodes keep (every node of the view), one line each')
      .option('--status <status>', `only jobs in this state: ${JOB_STATUSES.join(', ')}`)
      .option('--enqueuer <id>', 'only jobs this key enqueued')
      .option('--mine', 'only jobs the caller key enqueued')
      .option('--key <file>', 'the caller key file, for --mine')
      .option('--limit <n>', 'at most this many', parseIntOption('--limit')),
  ).action(
    async (
      opts: CommonOptions & {
        status?: string
        enqueuer?: string
        mine?: boolean
        key?: string
        limit?: number
      },
    ) => {
      await runCommand(opts.json === true, async () => {
        if (opts.status !== undefined && !(JOB_STATUSES as readonly string[]).includes(opts.status))
          throw new CovenantError('INVALID_INPUT', `--status is one of ${JOB_STATUSES.join(', ')}`)
        const net = await session(opts)
        const enqueuer = opts.mine === true ? keyId(await loadCallerKey(opts.key)) : opts.enqueuer
        const jobs = await net.jobs({
          status: opts.status as JobInfo['status'] | undefined,
          enqueuer,
          limit: opts.limit,
        })
        if (opts.json === true) {
          printJson({ ok: true, jobs })
          return
        }
        for (const j of jobs)
          process.stdout.write(
            `${j.id}\t${j.status}\t${j.export}\tattempts ${j.started}\t${time(j.updatedAt)}` +
              `${j.error === null ? '' : `\t${j.error.code}`}\n`,
          )
      })
    },
  )

  common(
    job
      .command('cancel <id>')
      .description('cancel a job that has not succeeded; only its enqueuer may')
      .option('--key <file>', 'enqueuer key file (default: $COVENANT_HOME/key)'),
  ).action(async (id: string, opts: CommonOptions & { key?: string }) => {
    await runCommand(opts.json === true, async () => {
      const net = await session(opts)
      const info = await net.job(id).cancel({ key: await loadCallerKey(opts.key) })
      if (opts.json === true) printJson({ ok: true, job: info })
      else process.stdout.write(`${info.id}  ${info.status}\n`)
    })
  })
}

/** Waits for a job and prints its outcome; a job that failed is an answer, not a crash of the command. */
async function waitFor(net: CovenantClient, id: string, json: boolean, timeoutMs?: number): Promise<void> {
  let last = ''
  try {
    const out = await net.job(id).wait({
      timeoutMs,
      onUpdate: (info) => {
        if (json || info.status === last) return
        last = info.status
        process.stderr.write(
          `${info.status}${info.status === 'running' ? ` (attempt ${info.started})` : ''}\n`,
        )
      },
    })
    if (json)
      printJson({ ok: true, value: out.value, certificate: certificateToJSON(out.certificate), job: out.job })
    else printValue(out.value)
  } catch (err) {
    const e = CovenantError.from(err)
    if (e.code === 'NODE_UNREACHABLE' || e.code === 'INVALID_INPUT' || e.code === 'PEER_TIMEOUT') throw e
    if (json) printJson({ ok: false, error: e.toJSON() })
    else printError(e)
  }
}
