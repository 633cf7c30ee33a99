/**
 * `covenant call <cid> <export> [arg …]`: run a deployed function on the network through a quorum,
 * and pay its executors (settled before the command exits); `--quote` prices it instead.
 */
import { dirname } from 'node:path'
import type { Command } from 'commander'
import {
  type CovenantClient,
  connect,
  defaultKeyPath,
  loadCallerKey,
  loadCallerTicket,
  type QuoteResult,
} from '../../client/index.ts'
import { formatAmount } from '../../covenant/index.ts'
import { CovenantError } from '../../errors/index.ts'
import { certificateToJSON, conflictToJSON } from '../../exec/index.ts'
import type { PrivateKey } from '../../keys/index.ts'
import { parseArg, parseIntOption, printError, printJson, printValue } from '../output.ts'

interface CallCliOptions {
  replicas?: number
  quorum?: number
  fuel?: number
  memory?: number
  timeout?: number
  node?: string
  nodes?: string
  key?: string
  json?: boolean
  minQuorum?: number
  maxUnprovenSkips?: number
  minEligibleFraction?: number
  quote?: boolean
  store: string[]
}

/** Errors that mean the command itself could not run, rather than an answer from the network. */
const COULD_NOT_RUN = new Set(['NODE_UNREACHABLE', 'INVALID_INPUT', 'INVALID_REQUEST', 'CONFIG_INVALID'])

export function register(program: Command): void {
  program
    .command('call <cid> <export> [args...]')
    .description('run an export of a deployed function on the network; prints the value a quorum signed')
    .option('--replicas <k>', 'executors asked', parseIntOption('--replicas'))
    .option('--quorum <q>', 'matching receipts needed', parseIntOption('--quorum'))
    .option('--fuel <n>', 'fuel limit in sandbox ticks', parseIntOption('--fuel'))
    .option('--memory <MiB>', 'memory limit in MiB', parseIntOption('--memory'))
    .option('--timeout <ms>', 'wall-clock limit per executor', parseIntOption('--timeout'))
    .option('--node <url>', 'gateway node HTTP API (default: the local devnet)')
    .option(
      '--nodes <urls>',
      'comma-separated node URLs whose peer lists make the view certificates are checked against (default: every node of the local devnet without --node, else the gateway)',
    )
    .option('--key <file>', 'caller key file (default: $COVENANT_HOME/key)')
    .option(
      '--min-quorum <n>',
      'fewest matching receipts this caller accepts (1 to allow --quorum 1)',
      parseIntOption('--min-quorum'),
    )
    .option(
      '--max-unproven-skips <n>',
      'executors ranked ahead of the quorum that may be skipped with no proof',
      parseIntOption('--max-unproven-skips'),
    )
    .option(
      '--min-eligible-fraction <x>',
      'share of the executing nodes that must be eligible for the call (0 to 1)',
      Number.parseFloat,
    )
    .option(
      '--quote',
      'do not call: print what the call would cost (the gateway runs it once to measure its fuel)',
    )
    .option(
      '--store <ns>',
      'a namespace the function reads: fixed at its current version (repeatable)',
      (value: string, previous: string[]) => [...previous, value],
      [],
    )
    .option('--json', 'print exactly one JSON object; exit 0 whenever the network answered')
    .action(async (cid: string, exportName: string, rawArgs: string[], opts: CallCliOptions) => {
      const json = opts.json === true
      const started = performance.now()
      const ms = () => Math.round(performance.now() - started)
      let client: CovenantClient
      let key: PrivateKey
      let args: unknown[]
      try {
        args = rawArgs.map(parseArg)
        const nodes = opts.nodes
          ?.split(',')
          .map((u) => u.trim())
          .filter((u) => u !== '')
        const trust = {
          minQuorum: opts.minQuorum,
          maxUnprovenSkips: opts.maxUnprovenSkips,
          minEligibleFraction: opts.minEligibleFraction,
        }
        const keyFile = opts.key ?? (await defaultKeyPath())
        // the payer ledger lives beside the key: calls made with it are paid from it
        client = await connect({ node: opts.node, nodes, trust, payments: { ledgerDir: dirname(keyFile) } })
        key = await loadCallerKey(keyFile)
      } catch (err) {
        fail(json, err, ms())
        return
      }
      try {
        const limits = {
          replicas: opts.replicas,
          quorum: opts.quorum,
          fuel: opts.fuel,
          memoryMiB: opts.memory,
          timeoutMs: opts.timeout,
          key,
          ticket: await loadCallerTicket(key, Date.now(), opts.key),
          stores: opts.store,
        }
        if (opts.quote === true) {
          const quoted = await client.quote(cid, exportName, args, limits)
          if (json) printJson({ ok: true, ...quoted, ms: ms() })
          else printQuote(quoted)
          return
        }
        const result = await client.invoke(cid, exportName, args, limits)
        if (json) {
          printJson({
            ok: true,
            value: result.value,
            certificate: certificateToJSON(result.certificate),
            conflicts: result.conflicts.map(conflictToJSON),
            commits: result.commits,
            ms: ms(),
          })
          return
        }
        printValue(result.value)
        for (const c of result.commits)
          if (!('error' in c))
            process.stderr.write(
              `wrote ${c.ns}: ${c.duplicate ? 'already applied as' : 'applied as'} entry ${c.seq} on ${c.holders.length} holder(s)\n`,
            )
        const by = result.certificate.receipts.map((r) => r.executor.slice(-8)).join(' ')
        process.stderr.write(
          `certified by ${result.certificate.receipts.length}/${result.certificate.request.k} executors (${by}), ${ms()} ms` +
            `${result.conflicts.length > 0 ? `; ${result.conflicts.length} conflicting receipt(s) reported` : ''}\n`,
        )
      } catch (err) {
        const e = CovenantError.from(err)
        if (json && !COULD_NOT_RUN.has(e.code)) {
          // The network answered: a typed failure is a result, not a crash of this command.
          const { certificate, ...rest } = (e.details ?? {}) as { certificate?: unknown }
          const error = e.toJSON()
          if (certificate !== undefined) error.details = rest
          printJson(
            certificate === undefined
              ? { ok: false, error, ms: ms() }
              : { ok: false, error, certificate, ms: ms() },
          )
          return
        }
        fail(json, e, ms())
      } finally {
        // what this call owes goes out before the command ends (and anything left from before)
        await client.close()
      }
    })
}

function printQuote(quoted: QuoteResult): void {
  const { quote } = quoted
  const out = (line: string) => process.stdout.write(`${line}\n`)
  out(
    `fuel ${quoted.fuel} (the gateway's dry run${quoted.outcome === 'ok' ? '' : `, which failed: ${quoted.outcome}`})`,
  )
  for (const e of quote.executors)
    out(
      `  ${e.peer}  ${formatAmount(e.charge)}  (${formatAmount(e.basePrice)} + ${formatAmount(e.pricePerFuel)} × ${quote.fuel}, covenant v${e.covenantVersion})`,
    )
  out(
    quote.min === quote.max
      ? `a certificate of ${quote.q} costs ${formatAmount(quote.min)}`
      : `a certificate of ${quote.q} costs ${formatAmount(quote.min)} to ${formatAmount(quote.max)}, by which executors sign it`,
  )
}

function fail(json: boolean, err: unknown, ms: number): void {
  if (json) {
    printJson({ ok: false, error: CovenantError.from(err).toJSON(), ms })
    process.exitCode = 1
  } else {
    printError(err)
  }
}
