#!/usr/bin/env node
/**
 * The `covenant` command. Each subcommand lives in `commands/<name>.ts` and registers itself on
 * the program; this file only assembles them.
 */
import { Command } from 'commander'
import * as call from './commands/call.ts'
import * as demo from './commands/demo.ts'
import * as deploy from './commands/deploy.ts'
import * as devnet from './commands/devnet.ts'
import * as get from './commands/get.ts'
import * as keys from './commands/keys.ts'
import * as node from './commands/node.ts'
import * as peers from './commands/peers.ts'
import * as sandbox from './commands/sandbox.ts'
import * as store from './commands/store.ts'
import { printError } from './output.ts'

const program = new Command()
  .name('covenant')
  .description('Covenant: a peer-to-peer network that stores code and runs it under quorum-signed results')
  .version('0.1.0')
  .showHelpAfterError()

// Subcommands, one module each: import it here and add it to the list (keep both sorted).
const commands: Array<{ register(program: Command): void }> = [
  call,
  demo,
  deploy,
  devnet,
  get,
  keys,
  node,
  peers,
  sandbox,
  store,
]

for (const c of commands) c.register(program)

try {
  await program.parseAsync(process.argv)
} catch (err) {
  printError(err)
}
