/** `covenant peers`: the node's peer table with covenant summaries (signatures checked here). */
import type { Command } from 'commander'
import { connect, type PeerInfo } from '../../client/index.ts'
import { formatByteSize, signedCovenantFromJSON } from '../../covenant/index.ts'
import { printJson, runCommand } from '../output.ts'

function summary(p: PeerInfo): string {
  if (p.covenant === null) return 'no covenant yet'
  let verified = 'signature ok'
  try {
    signedCovenantFromJSON(p.covenant)
  } catch {
    verified = 'SIGNATURE INVALID'
  }
  const c = p.covenant.config
  const store = c.store.enabled
    ? `store ≤ ${formatByteSize(c.store.maxBytes)}${c.store.refusedTags.length ? ` refuses ${c.store.refusedTags.join(',')}` : ''}`
    : 'no store'
  const exec = c.execute.enabled
    ? `execute fuel ≤ ${c.execute.maxFuel}, ${c.execute.pricePerFuel} credits/fuel${c.execute.refusedTags.length ? ` refuses ${c.execute.refusedTags.join(',')}` : ''}`
    : 'no execute'
  return `v${p.covenant.version} ${verified}; ${store}; ${exec}`
}

export function register(program: Command): void {
  program
    .command('peers')
    .description("list the node's peers with their covenants")
    .option('--node <url>', 'node HTTP API (default: the local devnet)')
    .option('--json', 'print one JSON object')
    .action(async (opts: { node?: string; json?: boolean }) => {
      await runCommand(opts.json === true, async () => {
        const client = await connect({ node: opts.node })
        const peers = await client.peers()
        if (opts.json === true) {
          printJson({ ok: true, peers })
          return
        }
        for (const p of peers) {
          const state = p.self ? 'self' : p.alive ? 'alive' : 'dead'
          const conflicts = `${p.conflicts ?? 0} conflict${p.conflicts === 1 ? '' : 's'}`
          const statement = p.covenant?.config.statement ?? ''
          process.stdout.write(
            `${p.id}  ${state}  ${conflicts}\n  ${p.addrs[0] ?? '(no address)'}\n  ${summary(p)}\n` +
              (statement === '' ? '' : `  "${statement.replace(/\s+/g, ' ').slice(0, 200)}"\n`),
          )
        }
      })
    })
}
