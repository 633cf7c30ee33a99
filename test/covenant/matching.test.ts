import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  assertAllowed,
  DEFAULT_COVENANT,
  mayExecute,
  mayServe,
  mayStore,
  parseCovenantYaml,
} from '../../src/covenant/index.ts'

const ALICE = '12D3KooWRPh1PL3CFMzDvG31TswggpDXpR3ZoF25454y5tEaGzqs'
const MALLORY = '12D3KooWAKdbPybQRW733yyXxHFqUJUHQiNo6u7JaxCpW4LmBoQk'

const config = parseCovenantYaml(`
store:
  maxBytes: 1000
  refusedTags: [nsfw]
execute:
  enabled: true
  maxFuel: 1000
  maxMemoryMiB: 32
  maxWallClockMs: 2000
  pricePerFuel: 0.00001 cr
  refusedTags: [gambling]
  refusedPublishers: [${MALLORY}]
`)

const call = { tags: ['math'], publisher: ALICE, fuel: 1000, memoryMiB: 32, timeoutMs: 2000 }

describe('matching', () => {
  it('decides storing by enablement, refused tags and room left', () => {
    assert.deepEqual(mayStore(config, { tags: ['math'], size: 400, usedBytes: 600 }), { ok: true })
    assert.deepEqual(mayStore(config, { tags: ['math', 'nsfw'], size: 1, usedBytes: 0 }), {
      ok: false,
      reason: 'refuses tag "nsfw"',
    })
    const full = mayStore(config, { tags: [], size: 401, usedBytes: 600 })
    assert.equal(full.ok, false)
    assert.match(!full.ok ? full.reason : '', /no room/)
    const off = parseCovenantYaml('store:\n  enabled: false\n')
    assert.deepEqual(mayStore(off, { tags: [], size: 1, usedBytes: 0 }), {
      ok: false,
      reason: 'does not store content',
    })
  })

  it('serves by the store rules’ refused tags', () => {
    assert.deepEqual(mayServe(config, { tags: ['math'] }), { ok: true })
    assert.deepEqual(mayServe(config, { tags: ['nsfw'] }), { ok: false, reason: 'refuses tag "nsfw"' })
    // execution's refused tags do not stop serving
    assert.deepEqual(mayServe(config, { tags: ['gambling'] }), { ok: true })
  })

  it('decides execution by enablement, tags, publishers, limits and price', () => {
    assert.deepEqual(mayExecute(config, call), { ok: true })
    assert.deepEqual(mayExecute(DEFAULT_COVENANT, { ...call, fuel: 1, memoryMiB: 1, timeoutMs: 1 }), {
      ok: false,
      reason: 'does not execute code',
    })
    const refusals: Array<[Partial<typeof call> & { maxPricePerFuel?: number }, RegExp]> = [
      [{ tags: ['gambling'] }, /^refuses tag "gambling"$/],
      [{ publisher: MALLORY }, /^refuses publisher 12D3KooWAKdb/],
      [{ fuel: 1001 }, /at most 1000 fuel, 1001 asked/],
      [{ memoryMiB: 33 }, /at most 32 MiB/],
      [{ timeoutMs: 2001 }, /at most 2000 ms/],
      [{ maxPricePerFuel: 9999 }, /charges 0\.00001 cr per fuel, more than the 0\.000009999 cr offered/],
    ]
    for (const [change, reason] of refusals) {
      const d = mayExecute(config, { ...call, ...change })
      assert.equal(d.ok, false, JSON.stringify(change))
      assert.match(!d.ok ? d.reason : '', reason)
    }
    assert.deepEqual(mayExecute(config, { ...call, maxPricePerFuel: 10_000 }), { ok: true })
    const onlyAlice = parseCovenantYaml(`execute:\n  enabled: true\n  allowedPublishers: [${ALICE}]\n`)
    assert.deepEqual(mayExecute(onlyAlice, { ...call, fuel: 1 }), { ok: true })
    const d = mayExecute(onlyAlice, { ...call, fuel: 1, publisher: MALLORY })
    assert.match(!d.ok ? d.reason : '', /only for allowed publishers/)
  })

  it('turns a refusal into COVENANT_REFUSED', () => {
    assert.doesNotThrow(() => assertAllowed({ ok: true }))
    assert.throws(() => assertAllowed(mayServe(config, { tags: ['nsfw'] }), 'node X'), {
      code: 'COVENANT_REFUSED',
      message: 'node X refuses tag "nsfw"',
    })
  })
})
