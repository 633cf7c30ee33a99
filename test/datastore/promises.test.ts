/**
 * One entry per seq: a holder's promises to primaries (`createPromiseBook`), on a clock and a view
 * of who is alive the test sets, so every verdict is deterministic.
 */
import assert from 'node:assert/strict'
import { beforeEach, describe, it } from 'node:test'
import { createPromiseBook, type PromiseBook } from '../../src/datastore/index.ts'
import { errorCode } from '../fixtures/errors.ts'

const SELF = 'self'
const P = 'primary-p'
const Q = 'primary-q'
const TTL = 15_000
const x = { seq: 5, cid: 'cid-x', id: 'commit-x' }
const y = { seq: 5, cid: 'cid-y', id: 'commit-y' }

describe('a holder’s promises: one entry per seq', () => {
  let clock: number
  let alive: Set<string>
  let book: PromiseBook

  beforeEach(() => {
    clock = 1_000_000
    alive = new Set([P, Q])
    book = createPromiseBook({ self: SELF, alive: (p) => alive.has(p), ttlMs: TTL, max: 3, now: () => clock })
  })

  it('refuses another primary’s other entry at a seq promised to one (ENTRY_PROMISED, naming the entry and its primary)', () => {
    book.keep('ns', x, P)
    book.promise('ns', x, P)
    assert.deepEqual(book.at('ns', 5), { ...x, to: P, until: clock + TTL })
    assert.throws(
      () => book.keep('ns', y, Q),
      (e: Error & { code: string }) =>
        e.code === 'ENTRY_PROMISED' && e.message.includes('cid-x') && e.message.includes(P),
    )
    // at another seq the promise does not stand in the way
    book.keep('ns', { ...y, seq: 6 }, Q)
    // nor in another namespace
    book.keep('other', y, Q)
  })

  it('lets the same primary replace its offer, and the same commit or entry come from another primary (a gateway’s failover)', () => {
    book.promise('ns', x, P)
    book.keep('ns', y, P)
    book.keep('ns', { ...y, id: x.id }, Q)
    book.keep('ns', { ...y, cid: x.cid }, Q)
  })

  it('lapses after its time: the seq is free for another primary', () => {
    book.promise('ns', x, P)
    clock += TTL - 1
    assert.equal(
      errorCode(() => book.keep('ns', y, Q)),
      'ENTRY_PROMISED',
    )
    clock += 1
    book.keep('ns', y, Q)
    assert.equal(book.at('ns', 5), undefined)
  })

  it('lapses at once when its primary is dead in this node’s view; this node’s own promise stands while it lasts', () => {
    book.promise('ns', x, P)
    alive.delete(P)
    book.keep('ns', y, Q)
    assert.equal(book.at('ns', 5), undefined)
    assert.equal(book.last('ns'), undefined, 'a lapsed promise is forgotten')

    book.promise('ns', x, SELF)
    assert.equal(
      errorCode(() => book.keep('ns', y, Q)),
      'ENTRY_PROMISED',
    )
  })

  it('a fence (no entry, while a fork is decided) refuses every other primary’s entry at its seq', () => {
    book.promise('ns', { seq: 5, cid: '', id: '' }, P)
    assert.throws(
      () => book.keep('ns', y, Q),
      (e: Error & { code: string }) =>
        e.code === 'ENTRY_PROMISED' && e.message.includes('no entry while a fork is decided'),
    )
    book.keep('ns', y, P)
  })

  it('keeps one promise per namespace, the newest; the oldest namespace is forgotten past the most kept', () => {
    book.promise('ns', x, P)
    book.promise('ns', { ...y, seq: 6 }, Q)
    assert.equal(book.at('ns', 5), undefined, 'replaced by the newest offer')
    assert.deepEqual(book.last('ns'), { ...y, seq: 6, to: Q, until: clock + TTL })
    book.promise('a', x, P)
    book.promise('b', x, P)
    book.promise('c', x, P)
    assert.equal(book.last('ns'), undefined, 'the oldest of four, with three kept')
    assert.deepEqual(book.at('c', 5), { ...x, to: P, until: clock + TTL })
    book.forget('c')
    assert.equal(book.last('c'), undefined)
  })
})
