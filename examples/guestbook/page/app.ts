/**
 * The guestbook's page: lists the entries of its namespace and signs it by calling its function
 * through the node that served the page, with the SDK, like any caller. The page holds a key of
 * its own (made on first visit, kept in this browser's localStorage): it signs the requests, so it
 * is the author the function records and rate-limits; it has no right to write the namespace.
 *
 * Which guestbook: the address's fragment, `#ns=<namespace>&fn=<function CID>&nodes=<url>,…`;
 * `nodes` are the nodes whose peer lists make the view certificates are checked against (default:
 * the serving node alone, which is then trusted for who the executors are).
 */
import {
  type CovenantClient,
  connect,
  decodeKey,
  encodeKey,
  generateKey,
  keyId,
  type PrivateKey,
} from '../../../src/client/index.ts'
import { ENTRIES_PREFIX, type Entry, MAX_NAME, MAX_TEXT, RATE_COUNT } from '../rules.ts'

const KEY_ITEM = 'covenant-guestbook-key'
/** How often the list is read again, for entries others signed. */
const REFRESH_MS = 3000
/** Tries when another entry landed between reading and writing (WRITE_CONFLICT). */
const TRIES = 3

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T

async function pageKey(): Promise<PrivateKey> {
  const kept = localStorage.getItem(KEY_ITEM)
  if (kept !== null) {
    try {
      return decodeKey(Uint8Array.from(atob(kept), (c) => c.charCodeAt(0)))
    } catch {
      // a damaged key is replaced
    }
  }
  const key = await generateKey()
  localStorage.setItem(KEY_ITEM, btoa(String.fromCharCode(...encodeKey(key))))
  return key
}

function show(status: 'ok' | 'bad' | 'busy', text: string, code?: string): void {
  const el = $('status')
  el.className = `small ${status === 'busy' ? '' : status}`
  el.dataset.outcome = status
  if (code === undefined) delete el.dataset.code
  else el.dataset.code = code
  el.textContent = text
}

function short(id: string): string {
  return `${id.slice(0, 8)}…${id.slice(-6)}`
}

function render(entries: Entry[]): void {
  $('count').textContent = entries.length === 0 ? 'No' : String(entries.length)
  const list = $('entries')
  const items = [...entries].reverse().map((e) => {
    const li = document.createElement('li')
    li.dataset.n = String(e.n)
    const who = document.createElement('div')
    const name = document.createElement('span')
    name.className = 'who'
    name.textContent = e.name
    const meta = document.createElement('span')
    meta.className = 'muted small'
    meta.textContent = ` · ${new Date(e.at).toLocaleString()} · key ${short(e.author)}`
    who.append(name, meta)
    const text = document.createElement('div')
    text.className = 'text'
    text.textContent = e.text
    li.append(who, text)
    return li
  })
  list.replaceChildren(...items)
}

async function readAll(net: CovenantClient, ns: string): Promise<Entry[]> {
  const entries: Entry[] = []
  for (let after: string | undefined; ; ) {
    const page = await net.store(ns).list({ prefix: ENTRIES_PREFIX, after })
    for (const k of page.keys) entries.push(k.value as unknown as Entry)
    if (page.next === null) return entries
    after = page.next
  }
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.hash.slice(1))
  const ns = params.get('ns')
  const fn = params.get('fn')
  if (ns === null || fn === null) {
    show('bad', 'This address names no guestbook: it needs #ns=<namespace>&fn=<function CID>.')
    return
  }
  const others = (params.get('nodes') ?? '').split(',').filter((u) => u !== '' && u !== location.origin)
  const net = await connect({ nodes: [location.origin, ...others] })
  const key = await pageKey()
  $('ns').textContent = ns
  $('fn').textContent = fn
  $('me').textContent = keyId(key)
  $('limits').textContent =
    `Up to ${MAX_NAME} and ${MAX_TEXT} characters; ${RATE_COUNT} entries a minute per key.`
  const form = $<HTMLFormElement>('sign')
  const name = form.elements.namedItem('name') as HTMLInputElement
  const text = form.elements.namedItem('text') as HTMLTextAreaElement
  name.maxLength = MAX_NAME
  text.maxLength = MAX_TEXT

  const refresh = async () => {
    try {
      render(await readAll(net, ns))
    } catch (err) {
      show('bad', `Could not read the guestbook: ${(err as Error).message}`)
    }
  }

  form.addEventListener('submit', async (event) => {
    event.preventDefault()
    const button = form.querySelector('button') as HTMLButtonElement
    button.disabled = true
    show(
      'busy',
      'Signing: the network runs the function on executors it picks, and its holders check their receipts…',
    )
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          const result = await net.invoke(fn, 'sign', [ns, name.value, text.value], { stores: [ns], key })
          const entry = result.value as Entry
          const commit = result.commits[0]
          const where =
            commit !== undefined && !('error' in commit)
              ? `, written by ${commit.holders.length} holders`
              : ''
          show(
            'ok',
            `Signed as entry ${entry.n + 1}: certified by ${result.certificate.receipts.length} of ` +
              `${result.certificate.request.k} executors${where}.`,
          )
          text.value = ''
          break
        } catch (err) {
          const code = (err as { code?: string }).code
          if (code === 'WRITE_CONFLICT' && attempt < TRIES) continue
          show('bad', `Not signed: ${(err as Error).message}`, code)
          break
        }
      }
    } finally {
      button.disabled = false
      await refresh()
    }
  })

  await refresh()
  setInterval(refresh, REFRESH_MS)
}

main().catch((err: unknown) => show('bad', `The guestbook could not start: ${(err as Error).message}`))
