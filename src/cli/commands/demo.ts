/**
 * `covenant demo` (what `npm start` runs): a 5-node local network, a function run locally, the
 * same function deployed into the network and fetched back from a node that does not hold it, a
 * call answered by a quorum of executors, the guestbook app (examples/guestbook) set up and
 * signed once by a certified function write, its page's address, and where to look next. The
 * network keeps running until Ctrl-C unless `--exit` is given.
 */
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Command } from 'commander'
import { GUESTBOOK_DIST, guestbookUrl, setUpGuestbook } from '../../../examples/guestbook/setup.ts'
import { bundleFile } from '../../bundle/index.ts'
import { connect, defaultKeyPath, generateKey, loadCallerKey } from '../../client/index.ts'
import { formatAmount } from '../../covenant/index.ts'
import { DEVNET_FILE, startDevnet } from '../../devnet/index.ts'
import { createSandbox } from '../../sandbox/index.ts'
import { runCommand } from '../output.ts'
import { stopOnSignal } from '../signals.ts'
import { basePortLine, layoutOptions } from './devnet.ts'

interface DemoOptions {
  nodes: number
  dir: string
  basePort?: number
  exit?: boolean
}

const EXAMPLES = fileURLToPath(new URL('../../../examples/', import.meta.url))

function short(id: string): string {
  return `${id.slice(0, 8)}…${id.slice(-6)}`
}

function say(line = ''): void {
  process.stdout.write(`${line}\n`)
}

export function register(program: Command): void {
  const command = program
    .command('demo')
    .description('start a local network, deploy an example, call it through a quorum, and keep running')
  layoutOptions(command)
    .option('--exit', 'stop the network when the demo is done instead of waiting for Ctrl-C')
    .action(async (opts: DemoOptions) => {
      await runCommand(false, async () => {
        const started = Date.now()
        let app = ''
        say(`1. Starting a ${opts.nodes}-node local network in ${opts.dir} …`)
        const devnet = await startDevnet({
          dir: opts.dir,
          nodes: opts.nodes,
          basePort: opts.basePort,
          apps: { guestbook: GUESTBOOK_DIST },
        })
        try {
          for (const n of devnet.nodes) say(`   node ${n.index}  ${n.peerId}  ${n.http}`)
          say(`   ${basePortLine(devnet)}`)
          say(`   ready in ${((Date.now() - started) / 1000).toFixed(1)} s`)

          const file = join(EXAMPLES, 'markdown.ts')
          const shown = relative(process.cwd(), file) || file
          const { code } = await bundleFile(file)
          const input = '# Covenant\n\nCode that *no single machine* can lie about.'

          say()
          say(`2. Running ${shown} locally in the sandbox (no network):`)
          const sandbox = createSandbox({ workers: 1 })
          try {
            const local = await sandbox.run({
              code,
              exportName: 'render',
              args: [input],
              seed: 'demo',
              now: Date.now(),
            })
            if (local.ok) say(`   render(…) → ${JSON.stringify(local.value)}  (fuel ${local.fuel})`)
            else say(`   render(…) failed: ${local.error.code} ${local.error.message}`)
          } finally {
            await sandbox.stop()
          }

          say()
          say(`3. Deploying it (bundled with its npm import, ${code.length} bytes) …`)
          // The gateway is node 0; certificates are checked against what every node says the network is.
          // The caller pays from its ledger beside its key, funded by the devnet's faucet.
          const keyFile = await defaultKeyPath()
          const client = await connect({
            nodes: devnet.nodes.map((n) => n.http),
            payments: { ledgerDir: dirname(keyFile) },
          })
          const key = await loadCallerKey(keyFile)
          const funded = await client.faucet(undefined, { key })
          say(
            funded.from.length > 0
              ? `   caller funded by the devnet faucet: ${formatAmount(funded.granted)} from ${funded.from.length} nodes`
              : `   the faucet gave nothing more (${funded.refused[0]?.code ?? 'no node'}): the caller pays by cheque`,
          )
          const deployed = await client.deploy(code, { tags: ['demo'], name: 'markdown', key })
          say(`   function ${deployed.cid}`)
          say(
            `   exports ${deployed.exports.join(', ')}; code held by ${deployed.codeHolders.length}/${deployed.wanted} nodes`,
          )

          const holders = new Set(deployed.codeHolders)
          const outsider = devnet.nodes.find((n) => !holders.has(n.peerId)) ?? devnet.nodes[0]
          const other = await connect({ node: outsider.http })
          const fetched = await other.getBlock(deployed.codeCid)
          say(
            `   fetched back from node ${outsider.index}, which does not hold it: ${fetched.length} bytes, hash checked`,
          )

          say()
          say('4. Calling render through the network (3 executors, quorum 2) …')
          const t0 = Date.now()
          const result = await client.invoke(deployed.cid, 'render', [input], { replicas: 3, quorum: 2, key })
          say(`   value  ${JSON.stringify(result.value)}  (${Date.now() - t0} ms)`)
          say(`   certificate for request ${result.certificate.id}`)
          say(`   output hash ${result.certificate.outputHash}`)
          for (const r of result.certificate.receipts)
            say(`   signed by ${short(r.executor)}  fuel ${r.fuel}  covenant v${r.covenantVersion}`)
          say('   (checked by this client against the executors every node says the selection picks:')
          say('    the gateway is not trusted either)')
          await client.settle({ key })
          const charged = (await client.balance({ key, limit: 2 }))?.history ?? []
          for (const c of charged.filter((h) => h.ref === result.certificate.id))
            say(
              `   charged ${formatAmount(c.amount)} by ${short(c.payee)} (its price × fuel ${c.fuel}), paid by cheque`,
            )

          say()
          say(
            '5. Setting up the guestbook (examples/guestbook): a namespace whose only writer is a function …',
          )
          // The guestbook's owner is a key of its own: the page never needs it.
          const book = await setUpGuestbook(client, await generateKey())
          say(`   namespace ${book.ns}, writable by function ${book.fn} only`)
          const signed = await client.invoke(
            book.fn,
            'sign',
            [
              book.ns,
              'Covenant demo',
              'The first entry, written by a certified run of the guestbook’s function.',
            ],
            { stores: [book.ns], key },
          )
          const written = signed.commits[0]
          if (written !== undefined && !('error' in written))
            say(
              `   signed once: certified by ${signed.certificate.receipts.length} executors, applied on ${written.holders.length} holders as entry ${written.seq}`,
            )
          const nodes = devnet.nodes.map((n) => n.http)
          app = guestbookUrl(nodes[0], book, nodes)
          // settles what the calls owe and closes the caller's ledger
          await client.close()

          say()
          say(`Guestbook: ${app}`)
          say(`Dashboard: ${devnet.nodes[0].http}/  (the network, live calls, storage, a playground)`)
          say()
          say('Where to look:')
          for (const n of devnet.nodes)
            say(`   node ${n.index} HTTP API  ${n.http}/v1/node   metrics ${n.http}/metrics`)
          say(`   devnet file       ${relative(process.cwd(), resolve(devnet.dir, DEVNET_FILE))}`)
          say(`   node logs         ${relative(process.cwd(), resolve(devnet.dir, 'node-0', 'node.log'))} …`)
          say('   try               npx covenant peers')
          say('                     npx covenant balance')
          say(`                     npx covenant call ${deployed.cid} outline '"# A\\n## B"' --json`)
          say('                     npx covenant deploy examples/hello.ts --tag demo')
          say('   docs              README.md, docs/functions.md, docs/calling.md, docs/apps.md')
        } catch (err) {
          await devnet.stop()
          throw err
        }

        if (opts.exit === true) {
          await devnet.stop()
          say('network stopped')
          return
        }
        say()
        say(
          `The network keeps running; Ctrl-C (or SIGTERM to this process) stops it. Dashboard: ${devnet.nodes[0].http}/`,
        )
        say(`Guestbook: ${app}`)
        await stopOnSignal('the network', () => devnet.stop())
      })
    })
}
