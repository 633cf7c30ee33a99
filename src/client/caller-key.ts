/**
 * The caller's key: `--key FILE`, else `$COVENANT_HOME/key`, else `~/.covenant/key`; created on
 * first use. Its ticket for the hour (exec's ticket.ts: ≈ half a second of hashing) is kept next to
 * it, in `<key file>.ticket`, so a command run many times an hour mints it once; its payer ledger
 * too, in `<key id>.ledger.db`.
 */
import type { z } from 'zod'
import { type Ticket, TicketSchema, ticketFor, ticketServes } from '../exec/index.ts'
import { KeyIdSchema, keyId, type PrivateKey } from '../keys/index.ts'
import type { PayerLedger, PayerLedgerInit } from '../ledger/index.ts'

/** Where the caller key lives when no file is named. Node only. */
export async function defaultKeyPath(): Promise<string> {
  const { homedir } = await import('node:os')
  const { join } = await import('node:path')
  const home = process.env.COVENANT_HOME ?? join(homedir(), '.covenant')
  return join(home, 'key')
}

/** Loads (or creates, mode 0600) the caller key. Node only; in a browser pass a key instead. */
export async function loadCallerKey(file?: string): Promise<PrivateKey> {
  const { loadOrCreateKey } = await import('../keys/index.ts')
  return loadOrCreateKey(file ?? (await defaultKeyPath()))
}

const TicketFileSchema = TicketSchema.extend({ caller: KeyIdSchema })

/**
 * The caller's ticket for a request made at `timestamp`: the one kept next to the key file if it
 * is this key's and still serves, else a new one (written there, mode 0600). Node only.
 */
export async function loadCallerTicket(key: PrivateKey, timestamp: number, file?: string): Promise<Ticket> {
  const { readFile, writeFile } = await import('node:fs/promises')
  const path = `${file ?? (await defaultKeyPath())}.ticket`
  const caller = keyId(key)
  let kept: z.infer<typeof TicketFileSchema> | undefined
  try {
    kept = TicketFileSchema.parse(JSON.parse(await readFile(path, 'utf8')))
  } catch {
    // none yet, or unreadable: a new one replaces it
  }
  if (kept !== undefined && kept.caller === caller && ticketServes(kept, timestamp))
    return { epoch: kept.epoch, nonce: kept.nonce }
  const ticket = ticketFor(caller, timestamp)
  await writeFile(path, `${JSON.stringify({ caller, ...ticket })}\n`, { mode: 0o600 }).catch(() => {})
  return ticket
}

/**
 * Opens the caller's payer ledger. It lives next to the key, one file per key id
 * (`<dir>/<key id>.ledger.db`): in `dir` if given, else beside the caller key file when the key is
 * that file's, else in memory (a key handed to the SDK has no file to sit beside). Node only: a
 * browser's version answers `undefined`, and its calls run on credit (docs/payments.md).
 */
export async function openCallerLedger(
  init: Omit<PayerLedgerInit, 'path'> & { dir?: string; fromKeyFile: boolean },
): Promise<PayerLedger | undefined> {
  const { dirname, join } = await import('node:path')
  const { openPayerLedger } = await import('../ledger/index.ts')
  const { dir, fromKeyFile, ...rest } = init
  const where = dir ?? (fromKeyFile ? dirname(await defaultKeyPath()) : undefined)
  const path = where === undefined ? ':memory:' : join(where, `${keyId(init.key)}.ledger.db`)
  return openPayerLedger({ ...rest, path })
}
