/**
 * `covenant keys`: the caller key that signs requests and manifests. Its id is what executors see
 * as `ctx.request.caller` and what covenants name in `allowedPublishers` / `refusedPublishers`.
 */
import type { Command } from 'commander'
import { defaultKeyPath, loadCallerKey } from '../../client/index.ts'
import { keyId } from '../../keys/index.ts'
import { printJson, runCommand } from '../output.ts'

interface KeysCliOptions {
  key?: string
  json?: boolean
}

export function register(program: Command): void {
  program
    .command('keys')
    .description('show the caller key id (creating the key on first use) and where it is kept')
    .option('--key <file>', 'key file (default: $COVENANT_HOME/key, else ~/.covenant/key)')
    .option('--json', 'print one JSON object')
    .action(async (opts: KeysCliOptions) => {
      await runCommand(opts.json === true, async () => {
        const file = opts.key ?? (await defaultKeyPath())
        const id = keyId(await loadCallerKey(file))
        if (opts.json === true) printJson({ ok: true, id, file })
        else
          process.stdout.write(
            `${id}\n  kept in ${file} (keep it secret; it signs your requests and deployments)\n`,
          )
      })
    })
}
