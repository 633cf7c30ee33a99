/**
 * What a browser bundle gets instead of `node-helpers.ts` (package.json `browser` field): the
 * same functions, failing with what to pass instead. A browser has no devnet.json, no key file
 * and no esbuild, so the caller passes `nodes` and `key` explicitly, and the node reads a module's
 * exports.
 */
import { CovenantError } from '../errors/index.ts'
import { type Ticket, ticketFor } from '../exec/index.ts'
import { keyId, type PrivateKey } from '../keys/index.ts'
import type { PayerLedger } from '../ledger/index.ts'

export async function defaultKeyPath(): Promise<string> {
  throw new CovenantError('INVALID_INPUT', 'a browser has no caller key file; pass `key` (see generateKey)')
}

export async function loadCallerKey(_file?: string): Promise<PrivateKey> {
  throw new CovenantError('INVALID_INPUT', 'a browser has no caller key file; pass `key` (see generateKey)')
}

export async function findDevnetNodes(_devnetDir?: string): Promise<string[]> {
  throw new CovenantError(
    'NODE_UNREACHABLE',
    'a browser cannot look up a devnet; pass connect({ nodes: [URL, …] })',
  )
}

export async function bundleFunctionFile(_file: string | URL): Promise<string> {
  throw new CovenantError(
    'INVALID_INPUT',
    'a browser cannot bundle files; pass the bundled code (or deploy the file from Node or the CLI)',
  )
}

/** No esbuild here: the node's inspect route reads the exports, and its deploy route refuses imports. */
export async function inspectHere(_code: string): Promise<undefined> {
  return undefined
}

/** A browser keeps the caller's ticket in memory only. */
export async function loadCallerTicket(key: PrivateKey, timestamp: number, _file?: string): Promise<Ticket> {
  return ticketFor(keyId(key), timestamp)
}

export type { DirectCaller, DirectInvokeInit } from './direct.ts'

/** A browser has no libp2p transport to a node: it calls through its gateway. */
export async function openDirect(): Promise<never> {
  throw new CovenantError(
    'INVALID_INPUT',
    'a browser calls executors through its gateway; leave `direct` off',
  )
}

/** A browser has no SQLite: no payer ledger, so its calls run on the executors' credit. */
export async function openCallerLedger(_init: unknown): Promise<PayerLedger | undefined> {
  return undefined
}
