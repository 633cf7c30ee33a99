/**
 * The guestbook's rules, shared by its function (bundled into it) and its page (which shows the
 * limits and reads the keys): what the namespace holds and how much one author key may write.
 */

/** The longest name and text, in characters (after trimming). */
export const MAX_NAME = 40
export const MAX_TEXT = 280
/** An author key may sign at most RATE_COUNT entries in any RATE_WINDOW_MS. */
export const RATE_COUNT = 3
export const RATE_WINDOW_MS = 60_000

/** Where entries live: `entries/<n>`, n zero-padded to 8 digits so the keys list in order. */
export const ENTRIES_PREFIX = 'entries/'
/** The keys the guestbook's function writes, which its owner grants it. */
export const GRANTED_PREFIXES = [ENTRIES_PREFIX, 'authors/', 'count'] as const

/** One entry of the guestbook. */
export interface Entry {
  n: number
  name: string
  text: string
  /** the key that signed the request */
  author: string
  /** the request's timestamp, ms since the epoch */
  at: number
}

/** The key of entry `n`. */
export function entryKey(n: number): string {
  return `${ENTRIES_PREFIX}${String(n).padStart(8, '0')}`
}

/** The key that keeps an author key's last entry times. */
export function authorKey(author: string): string {
  return `authors/${author}`
}
