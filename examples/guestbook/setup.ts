/**
 * Setting up the guestbook on a network, as its owner does once: deploy the function, create the
 * public namespace, grant the function's CID `store/write` on the keys it writes, and keep those
 * grants in the namespace, where the holders find them. After this, anyone can sign the guestbook
 * by calling the function (`sign`), with no grant and no owner's key; nobody can write it directly.
 * `covenant demo` (`npm start`) runs this, as do the tests and `npm run bench:store`.
 */
import { fileURLToPath } from 'node:url'
import type { CovenantClient, PrivateKey, WritePolicyInput } from '../../src/client/index.ts'
import { GRANTED_PREFIXES } from './rules.ts'

/** The function's source file. */
export const GUESTBOOK_FUNCTION = fileURLToPath(new URL('./guestbook.ts', import.meta.url))
/** The page, built ahead (`npm run build:web`): what a node serves under `/apps/guestbook/`. */
export const GUESTBOOK_DIST = fileURLToPath(new URL('./dist/', import.meta.url))

/** How long the owner's grants to the function hold. */
const GRANT_MS = 365 * 86_400_000

export interface Guestbook {
  /** the function's manifest CID */
  fn: string
  /** the namespace id */
  ns: string
}

/**
 * Deploys the guestbook's function and gives it a namespace named `name` owned by `owner`, with
 * `policy` (default: k ≥ 3, q ≥ 2, any executor the selection picks).
 */
export async function setUpGuestbook(
  net: CovenantClient,
  owner: PrivateKey,
  options: { name?: string; policy?: WritePolicyInput } = {},
): Promise<Guestbook> {
  const { cid: fn } = await net.deploy({ file: GUESTBOOK_FUNCTION }, { key: owner, name: 'guestbook' })
  const { ns } = await net.createStore(options.name ?? 'guestbook', {
    public: true,
    key: owner,
    policy: options.policy,
  })
  const expiresAt = Date.now() + GRANT_MS
  const grants = await Promise.all(
    GRANTED_PREFIXES.map((prefix) =>
      net.grant({ namespace: ns, audience: { fn }, prefix, expiresAt, key: owner }),
    ),
  )
  await net.store(ns, { key: owner }).keepGrants(grants)
  return { fn, ns }
}

/** The page's address on the node at `node`, naming the guestbook and the nodes its view comes from. */
export function guestbookUrl(node: string, book: Guestbook, viewFrom: readonly string[] = []): string {
  const parts = [`ns=${book.ns}`, `fn=${book.fn}`]
  if (viewFrom.length > 0) parts.push(`nodes=${viewFrom.map(encodeURI).join(',')}`)
  return `${node}/apps/guestbook/#${parts.join('&')}`
}
