/**
 * `covenant get <cid>`: fetch a block (hash-checked). A function's manifest is shown decoded; any
 * other block goes to stdout as it is, or to a file with --out.
 */
import { writeFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { connect } from '../../client/index.ts'
import { decodeManifest, type ManifestJSON, manifestToJSON, parseCid } from '../../content/index.ts'
import { printJson, printValue, runCommand } from '../output.ts'

interface GetCliOptions {
  out?: string
  node?: string
  json?: boolean
}

const DAG_CBOR = 0x71

/** The block decoded as a function manifest, if it is one. */
function asManifest(cid: string, bytes: Uint8Array): ManifestJSON | undefined {
  if (parseCid(cid).code !== DAG_CBOR) return undefined
  try {
    return manifestToJSON(decodeManifest(bytes))
  } catch {
    return undefined
  }
}

export function register(program: Command): void {
  program
    .command('get <cid>')
    .description('fetch a block from the network, checked against its CID (a manifest is shown decoded)')
    .option('--out <file>', 'write the bytes to a file instead of stdout')
    .option('--node <url>', 'node HTTP API (default: the local devnet)')
    .option('--json', 'print one JSON object (bytes in base64 unless --out; a manifest decoded)')
    .action(async (cid: string, opts: GetCliOptions) => {
      await runCommand(opts.json === true, async () => {
        const client = await connect({ node: opts.node })
        const bytes = await client.getBlock(cid)
        if (opts.out !== undefined) await writeFile(opts.out, bytes)
        const manifest = asManifest(cid, bytes)
        if (opts.json === true) {
          printJson({
            ok: true,
            cid,
            size: bytes.length,
            ...(manifest === undefined ? {} : { manifest }),
            ...(opts.out === undefined
              ? { base64: Buffer.from(bytes).toString('base64') }
              : { out: opts.out }),
          })
        } else if (opts.out !== undefined)
          process.stderr.write(`wrote ${bytes.length} bytes to ${opts.out}\n`)
        else if (manifest !== undefined) printValue(manifest)
        else process.stdout.write(bytes)
      })
    })
}
