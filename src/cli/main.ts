#!/usr/bin/env node
/**
 * The `covenant` command. Each subcommand lives in `commands/<name>.ts` and registers itself on
 * the program; this file lists them and loads only the one asked for, so that `covenant peers`
 * does not load the node, libp2p and the sandbox on its way to one HTTP request. `covenant --help`
 * (or a name it does not know) lists them all by their summaries.
 */
import { Command } from 'commander'
import { printError } from './output.ts'

interface CommandModule {
  register(program: Command): void
}

// Subcommands, one module each: add a line here (keep them sorted). The summary is what
// `covenant --help` lists; the module gives the full description, arguments and options.
const COMMANDS: Array<{ name: string; summary: string; load(): Promise<CommandModule> }> = [
  {
    name: 'balance',
    summary: "the caller's balances and charges, after settling with the network (--faucet on a devnet)",
    load: () => import('./commands/balance.ts'),
  },
  {
    name: 'call',
    summary: 'run an export of a deployed function through a quorum',
    load: () => import('./commands/call.ts'),
  },
  {
    name: 'demo',
    summary: 'start a local network, deploy an example and call it (npm start)',
    load: () => import('./commands/demo.ts'),
  },
  {
    name: 'deploy',
    summary: 'bundle a function file and store it in the network',
    load: () => import('./commands/deploy.ts'),
  },
  {
    name: 'devnet',
    summary: 'run a local network of nodes on loopback',
    load: () => import('./commands/devnet.ts'),
  },
  {
    name: 'get',
    summary: 'fetch a block, a function’s manifest or its code, hash-checked',
    load: () => import('./commands/get.ts'),
  },
  {
    name: 'job',
    summary: 'jobs: enqueue now, find the result later (enqueue, status, wait, list, cancel)',
    load: () => import('./commands/job.ts'),
  },
  {
    name: 'keys',
    summary: 'show the caller key id and where it is kept',
    load: () => import('./commands/keys.ts'),
  },
  { name: 'node', summary: 'run a Covenant node', load: () => import('./commands/node.ts') },
  {
    name: 'peers',
    summary: "list a node's peers with their covenants",
    load: () => import('./commands/peers.ts'),
  },
  {
    name: 'sandbox',
    summary: 'run a function file locally, in the sandbox',
    load: () => import('./commands/sandbox.ts'),
  },
  {
    name: 'store',
    summary: 'datastores: create, read, write, grant and revoke',
    load: () => import('./commands/store.ts'),
  },
]

/** The subcommand named on the command line (`help <name>` names one too), if any. */
function named(args: string[]): string | undefined {
  const words = args.filter((a) => !a.startsWith('-'))
  return words[0] === 'help' ? words[1] : words[0]
}

const program = new Command()
  .name('covenant')
  .description('Covenant: a peer-to-peer network that stores code and runs it under quorum-signed results')
  .version('0.1.0')
  .showHelpAfterError()

const wanted = COMMANDS.find((c) => c.name === named(process.argv.slice(2)))
if (wanted !== undefined) (await wanted.load()).register(program)
else for (const c of COMMANDS) program.command(c.name).summary(c.summary)

try {
  await program.parseAsync(process.argv)
} catch (err) {
  printError(err)
}
