/**
 * `covenant get <cid>`: fetch a block (hash-checked). A function's manifest is shown decoded, or
 * with --code its code (the block the manifest names); any other block goes to stdout as it is, or
 * to a file with --out.
 */
import { writeFile } from 'node:fs/promises'
import type { Command } from 'commander'
import { connect } from '../../client/index.ts'
import { decodeManifest, type ManifestJSON, manifestToJSON, parseCid } from '../../content/index.ts'
import { CovenantError } from '../../errors/index.ts'
import { printJson, printValue, runCommand } from '../output.ts'

interface GetCliOptions {
  out?: string
  code?: boolean
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
    .option('--code', 'for a function: its code (the module its manifest names) instead of the manifest')
    .option('--out <file>', 'write the bytes to a file instead of stdout')
    .option('--node <url>', 'node HTTP API (default: the local devnet)')
    .option('--json', 'print one JSON object (bytes in base64 unless --out; a manifest decoded)')
    .action(async (cid: string, opts: GetCliOptions) => {
      await runCommand(opts.json === true, async () => {
        const client = await connect({ node: opts.node })
        let bytes = await client.getBlock(cid)
        let manifest = asManifest(cid, bytes)
        if (opts.code === true) {
          if (manifest === undefined)
            throw new CovenantError(
              'INVALID_INPUT',
              `${cid} is not a function's manifest; --code needs a function CID`,
            )
          bytes = await client.getBlock(manifest.code)
          manifest = undefined
        }
        if (opts.out !== undefined) await writeFile(opts.out, bytes)
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
        else if (manifest !== undefined) {
          printValue(manifest)
          process.stderr.write(`its code: covenant get ${cid} --code [--out fn.js]\n`)
        } else process.stdout.write(bytes)
      })
    })
}
