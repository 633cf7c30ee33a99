/**
 * What every page shares: the client of the node that served the page, the visitor's own caller
 * key (made in this browser, kept in localStorage: the node never signs for a browser), a polling
 * hook, and how ids, sizes and times are written.
 */
import { useEffect, useState } from 'preact/hooks'
import { CovenantClient, decodeKey, encodeKey, generateKey, type PrivateKey } from '../../client/index.ts'
import { fromBase64, toBase64 } from '../../encoding/index.ts'

/** The node that served this page; the dashboard reads and writes only through its HTTP API. */
export const node = new CovenantClient(location.origin)

const KEY_ITEM = 'covenant.callerKey'

/** The visitor's caller key: made on first use and kept in this browser only. */
export async function callerKey(): Promise<PrivateKey> {
  const kept = localStorage.getItem(KEY_ITEM)
  const bytes = kept === null ? undefined : fromBase64(kept)
  if (bytes !== undefined) {
    try {
      return decodeKey(bytes)
    } catch {
      // an unreadable key is replaced below; it signed nothing this browser can still use
    }
  }
  return newCallerKey()
}

/** Replaces the visitor's caller key with a new one. */
export async function newCallerKey(): Promise<PrivateKey> {
  const key = await generateKey()
  localStorage.setItem(KEY_ITEM, toBase64(encodeKey(key)))
  return key
}

/** `12D3KooW…a1b2c3`: enough of an id to tell peers apart; the full id is in the title. */
export function short(id: string | null | undefined, tail = 6): string {
  if (id === null || id === undefined) return '—'
  return id.length <= tail + 9 ? id : `${id.slice(0, 8)}…${id.slice(-tail)}`
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB']
  let i = 0
  let v = n
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`
}

export function ago(at: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - at) / 1000))
  if (s < 2) return 'just now'
  if (s < 90) return `${s} s ago`
  if (s < 5400) return `${Math.round(s / 60)} min ago`
  return `${Math.round(s / 3600)} h ago`
}

export function clock(at: number): string {
  return new Date(at).toLocaleTimeString([], { hour12: false })
}

/** An error as a person reads it: its code, message and what to do. */
export interface Shown {
  code: string
  message: string
  hint?: string
}

export function shown(err: unknown): Shown {
  const e = err as { code?: unknown; message?: unknown; hint?: unknown }
  return {
    code: typeof e.code === 'string' ? e.code : 'ERROR',
    message: typeof e.message === 'string' ? e.message : String(err),
    hint: typeof e.hint === 'string' ? e.hint : undefined,
  }
}

/** Loads `load()` now and every `everyMs`; the last value and the last error, if the last load failed. */
export function usePoll<T>(load: () => Promise<T>, everyMs: number): { data?: T; error?: Shown } {
  const [state, setState] = useState<{ data?: T; error?: Shown }>({})
  useEffect(() => {
    let live = true
    let timer: ReturnType<typeof setTimeout> | undefined
    const tick = async (): Promise<void> => {
      try {
        const data = await load()
        if (live) setState({ data })
      } catch (err) {
        if (live) setState((s) => ({ data: s.data, error: shown(err) }))
      }
      if (live) timer = setTimeout(tick, everyMs)
    }
    void tick()
    return () => {
      live = false
      clearTimeout(timer)
    }
  }, [])
  return state
}
