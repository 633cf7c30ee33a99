/** `covenant deploy <file>`: bundle a module, sign its manifest with the caller key, store both. */
import type { Command } from 'commander'
import { bundleFile } from '../../bundle/index.ts'
import { connect, loadCallerKey } from '../../client/index.ts'
import { printJson, runCommand } from '../output.ts'

interface DeployCliOptions {
  tag: string[]
  name?: string
  node?: string
  key?: string
  json?: boolean
}

const collect = (value: string, previous: string[]): string[] => [...previous, value]

export function register(program: Command): void {
  program
    .command('deploy <file>')
    .description('bundle a function module and store it in the network; prints its manifest CID')
    .option('--tag <tag>', 'content tag (repeatable)', collect, [])
    .option('--name <name>', 'a name for the function')
    .option('--node <url>', 'node HTTP API (default: the local devnet)')
    .option('--key <file>', 'publisher key file (default: $COVENANT_HOME/key)')
    .option('--json', 'print one JSON object')
    .action(async (file: string, opts: DeployCliOptions) => {
      await runCommand(opts.json === true, async () => {
        const { code } = await bundleFile(file)
        const client = await connect({ node: opts.node })
        const key = await loadCallerKey(opts.key)
        const result = await client.deploy(code, { tags: opts.tag, name: opts.name, key })
        if (opts.json === true) {
          printJson({ ok: true, ...result })
          return
        }
        process.stdout.write(`${result.cid}\n`)
        process.stderr.write(
          `deployed ${file}: exports ${result.exports.join(', ') || '(none)'}\n` +
            `  code   ${result.codeCid}\n  held by ${result.holders.length}/${result.wanted}: ${result.holders.join(' ')}\n`,
        )
      })
    })
}
