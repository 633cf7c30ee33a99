/**
 * `covenant store …`: datastores from the command line. `create` a namespace owned by the caller
 * key, `put` keys (several at once, under the versions read), `get`, `list` and `history` at any
 * version, `grant` another key or a function the right to write a prefix (and `--keep` a function's
 * grant in the namespace for the holders), `revoke` it, and `vouch` for an executor. Every
 * subcommand takes `--node URL` and `--json` (exactly one JSON object on stdout).
 */
import { readFile, writeFile } from 'node:fs/promises'
import type { Command } from 'commander'
import {
  type CovenantClient,
  connect,
  grantFromJSON,
  grantToJSON,
  loadCallerKey,
  type PrivateKey,
  type Read,
  type Write,
  type WriteGrant,
} from '../../client/index.ts'
import { CovenantError } from '../../errors/index.ts'
import { parseArg, parseIntOption, printJson, printValue, runCommand } from '../output.ts'

interface CommonOptions {
  node?: string
  key?: string
  json?: boolean
}

const collect = (value: string, previous: string[]): string[] => [...previous, value]

/** `--expires 30d`: a duration in s, m, h or d, as milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)(s|m|h|d)$/.exec(text)
  if (m === null)
    throw new CovenantError('INVALID_INPUT', `a duration is a number and s, m, h or d, not "${text}"`)
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd']
  return Number(m[1]) * unit
}

/** `--read key@3`: a key and the version it was read at. */
export function parseRead(text: string): Read {
  const at = text.lastIndexOf('@')
  const version = Number(text.slice(at + 1))
  if (at <= 0 || !Number.isSafeInteger(version) || version < 0)
    throw new CovenantError('INVALID_INPUT', `--read takes KEY@VERSION, got "${text}"`)
  return { key: text.slice(0, at), version }
}

/** `--set key=value`: the value parsed as JSON, else taken as a string. */
function parseSet(text: string): Write {
  const eq = text.indexOf('=')
  if (eq <= 0) throw new CovenantError('INVALID_INPUT', `--set takes KEY=VALUE, got "${text}"`)
  return { key: text.slice(0, eq), value: parseArg(text.slice(eq + 1)) as Write['value'] }
}

async function readGrant(file: string): Promise<WriteGrant> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err) {
    throw new CovenantError('INVALID_INPUT', `cannot read the grant file ${file}`, { cause: err })
  }
  try {
    return grantFromJSON(JSON.parse(text))
  } catch (err) {
    if (err instanceof CovenantError) throw err
    throw new CovenantError('GRANT_MALFORMED', `${file} is not JSON`, { cause: err })
  }
}

/** The node and, when `--key` names one (reads) or always (writes), the caller key. */
async function session(
  opts: CommonOptions,
  needKey: boolean,
): Promise<{ net: CovenantClient; key: PrivateKey | undefined }> {
  const net = await connect({ node: opts.node })
  const key = needKey || opts.key !== undefined ? await loadCallerKey(opts.key) : undefined
  return { net, key }
}

function common(command: Command, keyHelp: string): Command {
  return command
    .option('--node <url>', 'node HTTP API (default: the local devnet)')
    .option('--key <file>', keyHelp)
    .option('--json', 'print one JSON object')
}

const READ_KEY = 'key file to sign reads with: a private namespace is read by its owner only'
const WRITE_KEY = 'key file that signs (default: $COVENANT_HOME/key)'

export function register(program: Command): void {
  const store = program
    .command('store')
    .description('datastores: versioned key-value namespaces owned by a key')

  common(
    store
      .command('create <name>')
      .description('create a namespace owned by the caller key; prints its id')
      .option('--public', 'anyone may read it (default: only its owner)')
      .option(
        '--min-replicas <k>',
        'executors a function’s run must ask for',
        parseIntOption('--min-replicas'),
      )
      .option('--min-quorum <q>', 'receipts a function’s run must carry', parseIntOption('--min-quorum'))
      .option(
        '--vouched-by <keyid>',
        'count only certifiers this key vouches for (repeatable; see `store vouch`)',
        collect,
        [],
      ),
    WRITE_KEY,
  ).action(
    async (
      name: string,
      opts: CommonOptions & {
        public?: boolean
        minReplicas?: number
        minQuorum?: number
        vouchedBy: string[]
      },
    ) => {
      await runCommand(opts.json === true, async () => {
        const { net, key } = await session(opts, true)
        const policy =
          opts.minReplicas === undefined && opts.minQuorum === undefined && opts.vouchedBy.length === 0
            ? undefined
            : {
                minReplicas: opts.minReplicas,
                minQuorum: opts.minQuorum,
                certifiers: opts.vouchedBy.length === 0 ? undefined : { vouchedBy: opts.vouchedBy },
              }
        const created = await net.createStore(name, { public: opts.public === true, policy, key })
        if (opts.json === true)
          printJson({ ok: true, ns: created.ns, holders: created.holders, wanted: created.wanted })
        else {
          process.stdout.write(`${created.ns}\n`)
          process.stderr.write(`held by ${created.holders.length}/${created.wanted} nodes\n`)
        }
      })
    },
  )

  common(
    store
      .command('get <ns> <key>')
      .description('print a key’s value (null if absent), at the head or at --at VERSION')
      .option('--at <version>', 'the namespace version to read at', parseIntOption('--at')),
    READ_KEY,
  ).action(async (ns: string, k: string, opts: CommonOptions & { at?: number }) => {
    await runCommand(opts.json === true, async () => {
      const { net, key } = await session(opts, false)
      const got = await net.store(ns, { key }).get(k, { at: opts.at })
      if (opts.json === true) printJson({ ok: true, ...got })
      else printValue(got.value)
    })
  })

  common(
    store
      .command('list <ns>')
      .description('list the keys present under a prefix, with their values and versions')
      .option('--prefix <prefix>', 'only keys that start with it', '')
      .option('--at <version>', 'the namespace version to read at', parseIntOption('--at'))
      .option('--after <key>', 'start after this key (the previous page’s `next`)')
      .option('--limit <n>', 'at most this many keys', parseIntOption('--limit')),
    READ_KEY,
  ).action(
    async (
      ns: string,
      opts: CommonOptions & { prefix: string; at?: number; after?: string; limit?: number },
    ) => {
      await runCommand(opts.json === true, async () => {
        const { net, key } = await session(opts, false)
        const page = await net.store(ns, { key }).list({
          prefix: opts.prefix,
          at: opts.at,
          after: opts.after,
          limit: opts.limit,
        })
        if (opts.json === true) printJson({ ok: true, ...page })
        else {
          for (const k of page.keys)
            process.stdout.write(`${k.key}\t${JSON.stringify(k.value)}\t@${k.version}\n`)
          if (page.next !== null) process.stderr.write(`more after ${JSON.stringify(page.next)} (--after)\n`)
        }
      })
    },
  )

  common(
    store
      .command('history <ns> [key]')
      .description('the namespace’s entries, oldest first; with a key, that key’s versions, newest first')
      .option('--after <seq>', 'entries after this one', parseIntOption('--after'))
      .option('--before <version>', 'a key’s versions before this one', parseIntOption('--before'))
      .option('--limit <n>', 'at most this many', parseIntOption('--limit')),
    READ_KEY,
  ).action(
    async (
      ns: string,
      k: string | undefined,
      opts: CommonOptions & { after?: number; before?: number; limit?: number },
    ) => {
      await runCommand(opts.json === true, async () => {
        const { net, key } = await session(opts, false)
        const handle = net.store(ns, { key })
        if (k !== undefined) {
          const page = await handle.keyHistory(k, { before: opts.before, limit: opts.limit })
          if (opts.json === true) printJson({ ok: true, ...page })
          else
            for (const v of page.versions) process.stdout.write(`@${v.version}\t${JSON.stringify(v.value)}\n`)
          return
        }
        const page = await handle.history({ after: opts.after, limit: opts.limit })
        if (opts.json === true) printJson({ ok: true, ...page })
        else
          for (const e of page.entries)
            process.stdout.write(
              `${e.seq}\t${new Date(e.at).toISOString()}\t${e.kind}\t${e.id}\t${e.keys.join(' ')}\n`,
            )
      })
    },
  )

  common(
    store
      .command('put <ns> [key] [value]')
      .description(
        'write keys in one commit, signed by the caller key; the value is JSON, or else a string; refused (WRITE_CONFLICT) if a --read version is no longer current',
      )
      .option('--set <key=value>', 'another key to write (repeatable)', collect, [])
      .option('--delete <key>', 'a key to delete (repeatable)', collect, [])
      .option('--read <key@version>', 'a version the write depends on (repeatable)', collect, [])
      .option(
        '--grant <file>',
        'a grant to write with, as `covenant store grant` wrote it (repeatable)',
        collect,
        [],
      ),
    WRITE_KEY,
  ).action(
    async (
      ns: string,
      k: string | undefined,
      value: string | undefined,
      opts: CommonOptions & { set: string[]; delete: string[]; read: string[]; grant: string[] },
    ) => {
      await runCommand(opts.json === true, async () => {
        const writes: Write[] = [
          ...(k === undefined
            ? []
            : [{ key: k, value: (value === undefined ? null : parseArg(value)) as Write['value'] }]),
          ...opts.set.map(parseSet),
          ...opts.delete.map((key) => ({ key, value: null })),
        ]
        if (writes.length === 0)
          throw new CovenantError('INVALID_INPUT', 'nothing to write: give KEY VALUE, --set or --delete')
        if (k !== undefined && value === undefined)
          throw new CovenantError(
            'INVALID_INPUT',
            `no value for ${JSON.stringify(k)} (use --delete to delete a key)`,
          )
        const reads = opts.read.map(parseRead)
        const grants = await Promise.all(opts.grant.map(readGrant))
        const { net, key } = await session(opts, true)
        const result = await net.store(ns, { key }).commit(writes, { reads, grants })
        if (opts.json === true) printJson({ ok: true, ...result })
        else
          process.stdout.write(
            `${result.duplicate ? 'already applied as' : 'applied as'} entry ${result.seq} (${result.cid}) on ${result.holders.length} holder(s)\n`,
          )
      })
    },
  )

  common(
    store
      .command('grant <ns> <audience>')
      .description(
        'grant a key (its id) or a function (fn:<manifest CID>) the right to write keys under a prefix; prints the grant as JSON (nothing goes to the network)',
      )
      .option('--prefix <prefix>', 'the keys it may write start with this', '')
      .option('--expires <duration>', 'how long it holds: 30d, 12h, 90m, 3600s', '30d')
      .option('--proof <file>', 'the grant you hold, to re-delegate a narrower part of it')
      .option('--out <file>', 'write the grant to a file instead of stdout')
      .option(
        '--keep',
        'also keep a grant to a function in the namespace, where its holders find it: its callers then need no grant',
      ),
    WRITE_KEY,
  ).action(
    async (
      ns: string,
      audienceText: string,
      opts: CommonOptions & { prefix: string; expires: string; proof?: string; out?: string; keep?: boolean },
    ) => {
      await runCommand(opts.json === true, async () => {
        const audience = audienceText.startsWith('fn:') ? { fn: audienceText.slice(3) } : audienceText
        const expiresAt = Date.now() + parseDuration(opts.expires)
        const proof = opts.proof === undefined ? undefined : await readGrant(opts.proof)
        const { net, key } = await session(opts, true)
        const made = await net.grant({ namespace: ns, audience, prefix: opts.prefix, expiresAt, proof, key })
        const kept = opts.keep === true ? await net.store(ns, { key }).keepGrants([made]) : undefined
        const grant = grantToJSON(made)
        if (opts.out !== undefined) await writeFile(opts.out, `${JSON.stringify(grant)}\n`, { mode: 0o600 })
        if (opts.json === true)
          printJson({
            ok: true,
            grant,
            expiresAt,
            ...(opts.out === undefined ? {} : { out: opts.out }),
            ...(kept === undefined ? {} : { kept }),
          })
        else if (opts.out === undefined) printJson(grant)
        else process.stderr.write(`wrote the grant ${grant.cid} to ${opts.out}\n`)
        if (kept !== undefined && opts.json !== true)
          process.stderr.write(`kept in the namespace as entry ${kept.seq}\n`)
      })
    },
  )

  common(
    store
      .command('vouch <ns> <executor>')
      .description(
        'vouch for an executor (its key id) in the namespace: counted by a write policy whose vouchedBy names your key',
      )
      .option('--expires <duration>', 'how long it holds: 30d, 12h, 90m, 3600s', '30d'),
    WRITE_KEY,
  ).action(async (ns: string, executor: string, opts: CommonOptions & { expires: string }) => {
    await runCommand(opts.json === true, async () => {
      const { net, key } = await session(opts, true)
      const vouch = await net.vouch({ executor, expiresAt: Date.now() + parseDuration(opts.expires), key })
      const result = await net.store(ns, { key }).keepVouch(vouch)
      if (opts.json === true) printJson({ ok: true, ...result })
      else process.stdout.write(`vouched for ${executor} as entry ${result.seq} (${result.cid})\n`)
    })
  })

  common(
    store
      .command('revoke <ns>')
      .description(
        'revoke a grant (or a delegation of its chain) you issued, on every holder of the namespace',
      )
      .requiredOption('--grant <file>', 'the grant, as `covenant store grant` wrote it')
      .option('--delegation <cid>', 'revoke this delegation of its chain (default: the grant itself)'),
    WRITE_KEY,
  ).action(async (ns: string, opts: CommonOptions & { grant: string; delegation?: string }) => {
    await runCommand(opts.json === true, async () => {
      const grant = await readGrant(opts.grant)
      const { net, key } = await session(opts, true)
      const result = await net.revoke(ns, { grant, delegation: opts.delegation, key })
      if (opts.json === true) printJson({ ok: true, ...result })
      else process.stdout.write(`revoked as entry ${result.seq} (${result.cid})\n`)
    })
  })
}
