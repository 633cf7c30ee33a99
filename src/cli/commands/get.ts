/** `covenant get <cid>`: fetch a block (hash-checked) to stdout or a file. */
import { writeFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { connect } from '../../client/index.ts'
import { printJson, runCommand } from '../output.ts'

interface GetCliOptions {
  out?: string
  node?: string
  json?: boolean
}

export function register(program: Command): void {
  program
    .command('get <cid>')
    .description('fetch a block from the network, checked against its CID')
    .option('--out <file>', 'write the bytes to a file instead of stdout')
    .option('--node <url>', 'node HTTP API (default: the local devnet)')
    .option('--json', 'print one JSON object (bytes in base64 unless --out)')
    .action(async (cid: string, opts: GetCliOptions) => {
      await runCommand(opts.json === true, async () => {
        const client = await connect({ node: opts.node })
        const bytes = await client.getBlock(cid)
        if (opts.out !== undefined) await writeFile(opts.out, bytes)
        if (opts.json === true) {
          printJson({
            ok: true,
            cid,
            size: bytes.length,
            ...(opts.out === undefined
              ? { base64: Buffer.from(bytes).toString('base64') }
              : { out: opts.out }),
          })
        } else if (opts.out === undefined) process.stdout.write(bytes)
        else process.stderr.write(`wrote ${bytes.length} bytes to ${opts.out}\n`)
      })
    })
}
