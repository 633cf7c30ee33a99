/**
 * Tickets: what a try at steering executor selection costs. A request carries a ticket
 * `{ epoch, nonce }`, and its selection key is derived from the ticket's hash, the function and the
 * export (see executor-selection.ts), never from anything the caller may vary for free (the
 * request's nonce, arguments or timestamp). A ticket is valid when
 *
 *   ticketHash = sha256("covenant/ticket/v1\0" + caller + "\0" + epoch + "\0" + nonce)
 *
 * (UTF-8, numbers in decimal) starts with at least {@link TICKET_BITS} zero bits, and its epoch is
 * the request's (`floor(timestamp / 1 h)`) or the one before. An honest caller mints one ticket per
 * key per hour (2^18 hashes, ≈ 0.3–0.6 s); someone who wants its own nodes among the executors
 * must mint one per try.
 */
import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js'
import { z } from 'zod'
import { sha256 } from '../encoding/index.ts'
import { CovenantError } from '../errors/index.ts'
import { SafeUintSchema } from './fields.ts'

/** Leading zero bits a ticket's hash needs: 2^18 hashes per ticket on average. */
export const TICKET_BITS = 18
/** A ticket's epoch is an hour. */
export const TICKET_EPOCH_MS = 3_600_000

export const TicketSchema = z.strictObject({ epoch: SafeUintSchema, nonce: SafeUintSchema })
export type Ticket = z.infer<typeof TicketSchema>

const encoder = new TextEncoder()

/** The ticket epoch of a timestamp (ms since the Unix epoch). */
export function epochOf(timestamp: number): number {
  return Math.floor(timestamp / TICKET_EPOCH_MS)
}

function prefix(caller: string, epoch: number): string {
  return `covenant/ticket/v1\0${caller}\0${epoch}\0`
}

/** sha256 of the ticket, as the module comment defines it. */
export function ticketHash(caller: string, ticket: Ticket): Uint8Array {
  return sha256(encoder.encode(prefix(caller, ticket.epoch) + ticket.nonce))
}

function enoughZeroBits(hash: Uint8Array): boolean {
  let bits = TICKET_BITS
  for (const byte of hash) {
    if (bits <= 0) return true
    if (bits >= 8) {
      if (byte !== 0) return false
      bits -= 8
    } else return byte >> (8 - bits) === 0
  }
  return bits <= 0
}

/**
 * Checks a request's ticket: enough work in its hash, and an epoch that is the request's or the
 * one before (a ticket minted just before the hour still serves). Returns the ticket's hash;
 * throws INVALID_REQUEST.
 */
export function checkTicket(caller: string, ticket: Ticket, timestamp: number): Uint8Array {
  const epoch = epochOf(timestamp)
  if (ticket.epoch !== epoch && ticket.epoch !== epoch - 1)
    throw new CovenantError(
      'INVALID_REQUEST',
      `the ticket is for epoch ${ticket.epoch}, the request's timestamp is in epoch ${epoch}`,
    )
  const hash = ticketHash(caller, ticket)
  if (!enoughZeroBits(hash))
    throw new CovenantError(
      'INVALID_REQUEST',
      `the ticket's hash has fewer than ${TICKET_BITS} leading zero bits`,
    )
  return hash
}

/**
 * Mints a ticket for `caller` and `epoch`: the first working nonce from `from` on. CPU-bound; with
 * `tries`, it gives up (undefined) after that many nonces, so a caller can mint in slices between
 * other work.
 */
export function mintTicket(caller: string, epoch: number, from?: number): Ticket
export function mintTicket(caller: string, epoch: number, from: number, tries: number): Ticket | undefined
export function mintTicket(
  caller: string,
  epoch: number,
  from = 0,
  tries = Number.POSITIVE_INFINITY,
): Ticket | undefined {
  // The prefix is hashed once; each try hashes only the nonce on top of that state.
  const state = nobleSha256.create().update(encoder.encode(prefix(caller, epoch)))
  for (let nonce = from; nonce < from + tries; nonce++) {
    if (
      enoughZeroBits(
        state
          .clone()
          .update(encoder.encode(String(nonce)))
          .digest(),
      )
    )
      return { epoch, nonce }
  }
  return undefined
}

/** Whether `ticket` may serve a request made at `timestamp`. */
export function ticketServes(ticket: Ticket, timestamp: number): boolean {
  const epoch = epochOf(timestamp)
  return ticket.epoch === epoch || ticket.epoch === epoch - 1
}

const MAX_MINTED = 256
const minted = new Map<string, Ticket>()

/**
 * A ticket of `caller` for a request made at `timestamp`: the one minted before if it still
 * serves, else a new one for this epoch. Kept in memory (a few callers); the CLI also keeps it on
 * disk next to the caller key.
 */
export function ticketFor(caller: string, timestamp: number): Ticket {
  const cached = minted.get(caller)
  if (cached !== undefined && ticketServes(cached, timestamp)) return cached
  const ticket = mintTicket(caller, epochOf(timestamp))
  minted.delete(caller)
  if (minted.size >= MAX_MINTED) minted.delete(minted.keys().next().value as string)
  minted.set(caller, ticket)
  return ticket
}
