/**
 * The guestbook's one function: it checks an entry and writes it to the guestbook's namespace.
 * The namespace's owner grants `store/write` on `entries/`, `authors/` and `count` to this
 * function's CID, and to nobody else: a browser cannot write an entry, it can only ask the network
 * to run this code, whose writes land only with a quorum certificate from executors it did not
 * choose. Change a character of it and it has a new CID, and no right to write.
 *
 * The namespace holds:
 *
 *   count            how many entries there are
 *   entries/<n>      entry n (n zero-padded to 8 digits, so keys list in order):
 *                    { n, name, text, author, at }
 *   authors/<key>    the times of an author key's last RATE_COUNT entries: the rate limit
 *
 * `author` is the key that signed the request (`ctx.request.caller`) and `at` its timestamp
 * (`ctx.now`), which every executor checked against its clock (at most a minute ahead).
 *
 *   npx covenant sandbox examples/guestbook/guestbook.ts sign bafyrei… Ada hello --store values.json
 */
import { authorKey, type Entry, entryKey, MAX_NAME, MAX_TEXT, RATE_COUNT, RATE_WINDOW_MS } from './rules.ts'

interface Ctx {
  now: number
  request: { id: string; caller: string }
  store: {
    get(ns: string, key: string): Promise<unknown>
    put(ns: string, key: string, value: unknown): void
  }
}

function field(value: unknown, what: string, max: number): string {
  if (typeof value !== 'string') throw new TypeError(`the ${what} must be text`)
  const trimmed = value.trim()
  if (trimmed.length === 0) throw new RangeError(`the ${what} is empty`)
  if ([...trimmed].length > max) throw new RangeError(`the ${what} is longer than ${max} characters`)
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(trimmed))
    throw new RangeError(`the ${what} holds control characters`)
  return trimmed
}

/**
 * Signs the guestbook `ns`: checks the name and text, and that the author key has signed fewer
 * than RATE_COUNT entries in the last RATE_WINDOW_MS (and none at or after this request's time),
 * then writes the entry as the next one. Returns it.
 */
export async function sign(ns: string, name: unknown, text: unknown, ctx: Ctx): Promise<Entry> {
  const entry = {
    name: field(name, 'name', MAX_NAME),
    text: field(text, 'text', MAX_TEXT),
    author: ctx.request.caller,
    at: ctx.now,
  }
  const author = authorKey(entry.author)
  const [count, recent] = await Promise.all([ctx.store.get(ns, 'count'), ctx.store.get(ns, author)])
  const times = Array.isArray(recent) ? recent.filter((t): t is number => typeof t === 'number') : []
  if (times.some((t) => t >= entry.at))
    throw new RangeError('this key signed an entry at or after this request’s time')
  const inWindow = times.filter((t) => t > entry.at - RATE_WINDOW_MS)
  if (inWindow.length >= RATE_COUNT)
    throw new RangeError(`slow down: at most ${RATE_COUNT} entries a minute from one key`)
  const n = typeof count === 'number' ? count : 0
  const written: Entry = { n, ...entry }
  ctx.store.put(ns, entryKey(n), written)
  ctx.store.put(ns, 'count', n + 1)
  ctx.store.put(ns, author, [...inWindow, entry.at])
  return written
}
