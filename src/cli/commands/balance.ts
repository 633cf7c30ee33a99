/**
 * `covenant balance`: what the caller key owes and has paid each node, as its own ledger keeps it
 * (`<key id>.ledger.db` beside the key), and its recent charges, each with the certificate (or
 * invoice) it comes from. It first settles with every node of the view — pending cheques and
 * certificates go out, invoices for the blocks the key published come in — unless `--offline`.
 * `--faucet` first asks a devnet's nodes for starting credit; `--certificate ID` prints one
 * charged certificate.
 */
import { dirname } from 'node:path'
import type { Command } from 'commander'
import {
  type Balance,
  connect,
  defaultKeyPath,
  type FaucetResult,
  keyId,
  loadCallerKey,
  openCallerLedger,
} from '../../client/index.ts'
import { formatAmount } from '../../covenant/index.ts'
import { CovenantError } from '../../errors/index.ts'
import { certificateToJSON } from '../../exec/index.ts'
import { parseIntOption, printJson, printValue, runCommand } from '../output.ts'

interface BalanceCliOptions {
  node?: string
  nodes?: string
  key?: string
  json?: boolean
  offline?: boolean
  faucet?: number | true
  certificate?: string
  limit?: number
}

/** What the faucet asks each node for unless told: 0.1 cr. */
const FAUCET_DEFAULT = 100_000_000

export function register(program: Command): void {
  program
    .command('balance')
    .description(
      "the caller's balance with each node and its recent charges, after settling with the network",
    )
    .option('--node <url>', 'gateway node HTTP API (default: the local devnet)')
    .option(
      '--nodes <urls>',
      'comma-separated node URLs whose peer lists make the view (default: the devnet)',
    )
    .option('--key <file>', 'caller key file (default: $COVENANT_HOME/key)')
    .option('--offline', 'show the local ledger only: settle with nobody')
    .option(
      '--faucet [ncr]',
      `on a devnet, ask every node for starting credit first (default ${formatAmount(FAUCET_DEFAULT)} each)`,
      parseIntOption('--faucet'),
    )
    .option('--certificate <id>', 'print the certificate a charge names (its id), from the local ledger')
    .option('--limit <n>', 'charges shown, newest first', parseIntOption('--limit'), 20)
    .option('--json', 'print exactly one JSON object')
    .action(async (opts: BalanceCliOptions) => {
      const json = opts.json === true
      await runCommand(json, async () => {
        const keyFile = opts.key ?? (await defaultKeyPath())
        const key = await loadCallerKey(keyFile)
        const ledgerDir = dirname(keyFile)
        if (opts.offline === true || opts.certificate !== undefined) {
          // the local ledger alone: no node is asked, so none need be running
          const refuse = (): never => {
            throw new CovenantError('INVALID_INPUT', 'nothing is recorded offline')
          }
          const ledger = await openCallerLedger({
            key,
            dir: ledgerDir,
            fromKeyFile: false,
            verifyCertificate: refuse,
            verifyConflict: refuse,
          })
          try {
            if (opts.certificate !== undefined) {
              const certificate = ledger?.certificate(opts.certificate)
              if (certificate === undefined)
                throw new CovenantError(
                  'NOT_FOUND',
                  `no charge of this key names the certificate ${opts.certificate}`,
                )
              printValue(certificateToJSON(certificate))
              return
            }
            const balance = {
              payer: keyId(key),
              accounts: ledger?.accounts() ?? [],
              history: ledger?.history({ limit: opts.limit }) ?? [],
            }
            if (json) printJson({ ok: true, ...balance, problems: [] })
            else print(balance, undefined, 'offline: the local ledger only', [])
          } finally {
            ledger?.close()
          }
          return
        }
        const nodes = opts.nodes
          ?.split(',')
          .map((u) => u.trim())
          .filter((u) => u !== '')
        const client = await connect({ node: opts.node, nodes, payments: { ledgerDir } })
        try {
          let faucet: FaucetResult | undefined
          if (opts.faucet !== undefined)
            faucet = await client.faucet(opts.faucet === true ? FAUCET_DEFAULT : opts.faucet, { key })
          await client.settle({ key, all: true })
          const balance = (await client.balance({ key, limit: opts.limit })) as Balance
          const problems = client.payments?.problems ?? []
          if (json) printJson({ ok: true, ...balance, faucet, problems })
          else print(balance, faucet, 'settled with every node of the view', problems)
        } finally {
          await client.close()
        }
      })
    })
}

const short = (id: string) => `${id.slice(0, 8)}…${id.slice(-6)}`

function print(
  balance: Balance,
  faucet: FaucetResult | undefined,
  synced: string,
  problems: ReadonlyArray<{ payee?: string; code: string; message: string }>,
): void {
  const out = (line = '') => process.stdout.write(`${line}\n`)
  out(`caller ${balance.payer}`)
  if (faucet !== undefined) {
    out(`faucet: ${formatAmount(faucet.granted)} from ${faucet.from.length} node(s)`)
    for (const r of faucet.refused) out(`  ${short(r.peer)} refused: ${r.code} ${r.message}`)
  }
  out(`(${synced})`)
  out()
  const rows = balance.accounts.map((a) => [
    short(a.payee),
    formatAmount(a.owed),
    formatAmount(a.paid),
    formatAmount(a.granted),
    formatAmount(a.outstanding),
    a.unconfirmed || a.undelivered > 0
      ? `${a.undelivered} certificate(s), cheque ${a.unconfirmed ? 'unconfirmed' : 'ok'}`
      : 'settled',
  ])
  table(['payee', 'owed', 'paid', 'granted', 'outstanding', 'state'], rows, out)
  const total = balance.accounts.reduce((sum, a) => sum + a.outstanding, 0)
  out(`\noutstanding in all: ${formatAmount(total)}${total < 0 ? ' (paid ahead)' : ''}`)
  if (balance.history.length > 0) {
    out('\ncharges, newest first (each from the certificate or invoice it names):')
    for (const c of balance.history)
      out(
        `  ${new Date(c.at).toISOString()}  ${c.kind.padEnd(5)} ${formatAmount(c.amount).padStart(14)}  ` +
          `${short(c.payee)}  v${c.covenantVersion}${c.fuel === undefined ? '' : ` fuel ${c.fuel}`}  ${c.ref}`,
      )
    out('  (covenant balance --certificate <id> prints one)')
  }
  for (const p of problems)
    out(`note: ${p.payee === undefined ? '' : `${short(p.payee)}: `}${p.code} ${p.message}`)
}

function table(headers: string[], rows: string[][], out: (line: string) => void): void {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)))
  for (const r of [headers, ...rows])
    out(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  '))
}
