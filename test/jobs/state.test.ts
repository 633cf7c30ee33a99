import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  attemptConflicted,
  attemptDeferred,
  attemptFailed,
  backoffMs,
  cancelJob,
  chargedOf,
  createJob,
  DEFAULT_BACKOFF,
  encodeState,
  failJob,
  initialState,
  isRetryable,
  isSettled,
  type JobState,
  JobStateSchema,
  MAX_ATTEMPTS_KEPT,
  markCommitted,
  mergeStates,
  openJobStore,
  paidOf,
  paidWithin,
  parseState,
  signCancel,
  startAttempt,
  succeed,
  wins,
} from '../../src/jobs/index.ts'
import { generateKey, keyId } from '../../src/keys/index.ts'
import { errorCode } from '../fixtures/errors.ts'
import { certifiedJobRun } from './fixtures.ts'

const FN = 'bafyreibtmy5nghh46uv4kumxy5izkgriwbejlazudn4egt7beazkz4ojpm'
const T = 1_800_000_000_000
const half = () => 0.5

async function setup(init: { retries?: number; windowMs?: number } = {}) {
  const key = await generateKey()
  const keeper = await generateKey()
  const { record, id } = createJob(
    key,
    { fn: FN, export: 'f', retries: init.retries ?? 2, deadline: T + (init.windowMs ?? 3_600_000) },
    T,
  )
  return { key, keeper: keyId(keeper), record, id }
}

function run(state: JobState, dispatcher: string, now: number): JobState {
  return startAttempt(state, {
    dispatcher,
    request: `req-${state.started + 1}`,
    now,
    leaseUntil: now + 60_000,
  })
}

describe('job states', () => {
  it('start queued at runAfter, the same on every keeper', async () => {
    const { record } = await setup()
    const s = initialState(record)
    assert.equal(s.status, 'queued')
    assert.equal(s.version, 1)
    assert.equal(s.runAt, record.runAfter)
    assert.deepEqual(encodeState(initialState(record)), encodeState(s))
    assert.deepEqual(parseState(JobStateSchema.parse(s)), s)
  })

  it('retry a failed attempt after a growing, jittered backoff, then fail with the last error', async () => {
    const { record, keeper } = await setup({ retries: 2 })
    let s = initialState(record)
    const errors = ['NO_QUORUM', 'PEER_TIMEOUT', 'USER_ERROR']
    let now = T
    for (const [i, code] of errors.entries()) {
      s = run(s, keeper, now)
      assert.equal(s.status, 'running')
      assert.equal(s.dispatcher, keeper)
      s = attemptFailed(s, record, { n: i + 1, now, error: { code, message: code }, random: half })
      if (i < 2) {
        assert.equal(s.status, 'queued', code)
        const d = Math.min(DEFAULT_BACKOFF.maxMs, DEFAULT_BACKOFF.baseMs * 2 ** i)
        assert.equal(s.runAt - now, Math.round((3 * d) / 4))
        now = s.runAt
      }
    }
    assert.equal(s.status, 'failed')
    assert.deepEqual(s.error, { code: 'USER_ERROR', message: 'USER_ERROR' })
    assert.equal(s.failures, 3)
    assert.deepEqual(
      s.attempts.map((a) => [a.n, a.outcome, a.error?.code]),
      [
        [1, 'failed', 'NO_QUORUM'],
        [2, 'failed', 'PEER_TIMEOUT'],
        [3, 'failed', 'USER_ERROR'],
      ],
    )
    assert.ok(isSettled(s))
  })

  it('fail at once on an outcome another attempt would repeat', async () => {
    const { record, keeper } = await setup({ retries: 5 })
    for (const code of [
      'FUEL_EXHAUSTED',
      'MEMORY_LIMIT',
      'NO_SUCH_EXPORT',
      'INVALID_CODE',
      'GRANT_REVOKED',
    ]) {
      assert.equal(isRetryable(code), false, code)
      const s = attemptFailed(run(initialState(record), keeper, T), record, {
        n: 1,
        now: T,
        error: { code, message: '' },
        random: half,
      })
      assert.equal(s.status, 'failed', code)
    }
    for (const code of ['NO_QUORUM', 'NO_EXECUTORS', 'USER_ERROR', 'TIMEOUT', 'NAMESPACE_NOT_FOUND'])
      assert.equal(isRetryable(code), true, code)
  })

  it('fail when the next attempt could not start before the deadline', async () => {
    const { record, keeper } = await setup({ retries: 5, windowMs: 1500 })
    const s = attemptFailed(run(initialState(record), keeper, T), record, {
      n: 1,
      now: T + 1000,
      error: { code: 'NO_QUORUM', message: 'x' },
      random: () => 1,
    })
    assert.equal(s.status, 'failed')
    assert.equal(
      failJob(initialState(record), { code: 'DEADLINE_EXCEEDED', message: '' }, T).status,
      'failed',
    )
  })

  it('run again after write conflicts without using a retry, until the deadline', async () => {
    const { record, keeper } = await setup({ retries: 0, windowMs: 60_000 })
    let s = initialState(record)
    let now = T
    for (let i = 1; i <= 5; i++) {
      s = attemptConflicted(run(s, keeper, now), record, {
        n: i,
        now,
        error: { code: 'WRITE_CONFLICT', message: 'moved' },
        random: half,
      })
      assert.equal(s.status, 'queued')
      assert.equal(s.failures, 0)
      assert.equal(s.conflicts, i)
      const d = Math.min(DEFAULT_BACKOFF.conflictMaxMs, DEFAULT_BACKOFF.conflictBaseMs * 2 ** (i - 1))
      assert.equal(s.runAt - now, Math.round((3 * d) / 4))
      now = s.runAt
    }
    const late = attemptConflicted(run(s, keeper, T + 59_999), record, {
      n: 6,
      now: T + 59_999,
      error: { code: 'WRITE_CONFLICT', message: 'moved' },
      random: half,
    })
    assert.equal(late.status, 'failed')
    assert.equal(late.error?.code, 'WRITE_CONFLICT')
  })

  it('defer an attempt the network had no room for, without using a retry, backing off while it lasts', async () => {
    const { record, keeper } = await setup()
    const busy = { code: 'NO_EXECUTORS', message: '2 live peers may execute this request, k=3 needed' }
    const defer = (state: JobState, now: number) => {
      const r = run(state, keeper, now)
      return attemptDeferred(r, record, { n: r.started, now, error: busy, random: half })
    }
    let s = initialState(record)
    let now = T
    for (let i = 1; i <= 3; i++) {
      s = defer(s, now)
      assert.equal(s.status, 'queued')
      assert.deepEqual([s.failures, s.conflicts], [0, 0])
      assert.equal(s.attempts.at(-1)?.outcome, 'deferred')
      // the wait grows with the deferrals in a row
      assert.equal(s.runAt - now, Math.round((3 * DEFAULT_BACKOFF.baseMs * 2 ** (i - 1)) / 4))
      now = s.runAt
    }
    // a real failure between them counts, and starts the row again
    const r = run(s, keeper, now)
    s = attemptFailed(r, record, {
      n: r.started,
      now,
      error: { code: 'NO_QUORUM', message: 'disagreed' },
      random: half,
    })
    assert.equal(s.failures, 1)
    now = s.runAt
    s = defer(s, now)
    assert.equal(s.runAt - now, Math.round((3 * DEFAULT_BACKOFF.baseMs) / 4))
    const late = defer(s, record.deadline - 1)
    assert.deepEqual([late.status, late.error?.code], ['failed', 'NO_EXECUTORS'])
  })

  it('abandon the attempt of a dispatcher that another took over from, without counting it', async () => {
    const { record, keeper } = await setup()
    const other = keyId(await generateKey())
    let s = run(initialState(record), keeper, T)
    s = run(s, other, T + 10)
    assert.equal(s.dispatcher, other)
    assert.equal(s.failures, 0)
    assert.deepEqual(
      s.attempts.map((a) => [a.n, a.dispatcher, a.outcome]),
      [
        [1, keeper, 'abandoned'],
        [2, other, 'running'],
      ],
    )
  })

  it('keep only the most recent attempts', async () => {
    const { record, keeper } = await setup({ windowMs: 30 * 24 * 3_600_000 })
    let s = initialState(record)
    for (let i = 1; i <= MAX_ATTEMPTS_KEPT + 5; i++)
      s = attemptConflicted(run(s, keeper, T), record, {
        n: i,
        now: T,
        error: { code: 'WRITE_CONFLICT', message: '' },
        random: half,
      })
    assert.equal(s.attempts.length, MAX_ATTEMPTS_KEPT)
    assert.equal(s.attempts.at(-1)?.n, MAX_ATTEMPTS_KEPT + 5)
    assert.ok(JobStateSchema.safeParse(s).success)
  })

  it('record a success, then mark it committed once its further jobs are created', async () => {
    const job = await certifiedJobRun()
    const t = job.record.createdAt
    let s = run(initialState(job.record), job.keeper, t)
    s = succeed(s, {
      n: 1,
      now: t + 5,
      result: { ...job.run, commits: [] },
      receipts: job.run.certificate.receipts,
    })
    assert.equal(s.status, 'succeeded')
    assert.equal(s.result?.committed, false)
    assert.equal(isSettled(s), false)
    s = markCommitted(s, t + 6)
    assert.equal(s.result?.committed, true)
    assert.ok(isSettled(s))
    assert.equal(
      errorCode(() => markCommitted(initialState(job.record), T)),
      'INTERNAL',
    )
  })

  it('charge the enqueuer what each attempt cost, per dispatcher, never past the budget', async () => {
    const key = await generateKey()
    const [a, b] = [keyId(await generateKey()), keyId(await generateKey())]
    const { record } = createJob(key, { fn: FN, export: 'f', retries: 5, budget: 100 }, T)
    const err = { code: 'USER_ERROR', message: 'not yet' }
    let s = run(initialState(record), a, T)
    s = attemptFailed(s, record, { n: 1, now: T + 1, error: err, cost: 40, random: half })
    // another keeper takes over: its attempts are its own charge, added to the job's
    s = run(s, b, T + 2)
    s = attemptConflicted(s, record, { n: 2, now: T + 3, error: err, cost: 30, random: half })
    s = run(s, b, T + 4)
    s = attemptFailed(s, record, { n: 3, now: T + 5, error: err, cost: 50, random: half })
    assert.deepEqual(
      s.attempts.map((x) => x.charged),
      [40, 30, 30],
      'the third is cut to what is left of the budget',
    )
    assert.deepEqual(s.charges, [
      { keeper: a, amount: 40 },
      { keeper: b, amount: 60 },
    ])
    assert.equal(chargedOf(s), 100)
    // past the budget nothing more is charged, whatever an attempt costs
    s = run(s, a, T + 6)
    s = attemptFailed(s, record, { n: 4, now: T + 7, error: err, cost: 70, random: half })
    assert.equal(chargedOf(s), 100)
    assert.equal(s.attempts.at(-1)?.charged, 0)
    // an abandoned attempt (its dispatcher died) is charged nothing
    const t = run(run(initialState(record), a, T), b, T + 1)
    assert.deepEqual([t.attempts[0].outcome, t.attempts[0].charged, t.charges], ['abandoned', 0, []])
  })

  it('cancel what has not ended; what has ended stays', async () => {
    const { key, record, id, keeper } = await setup()
    const cancel = signCancel(key, id, T)
    const c = cancelJob(run(initialState(record), keeper, T), cancel, T + 1)
    assert.equal(c.status, 'cancelled')
    assert.equal(c.error?.code, 'JOB_CANCELLED')
    assert.equal(c.attempts[0].outcome, 'abandoned')
    const failed = failJob(initialState(record), { code: 'DEADLINE_EXCEEDED', message: '' }, T)
    assert.equal(cancelJob(failed, cancel, T), failed)
  })
})

describe('merging states', () => {
  async function histories() {
    const job = await certifiedJobRun()
    const { record } = job
    const T = record.createdAt
    const a = keyId(await generateKey())
    const b = keyId(await generateKey())
    const s0 = initialState(record)
    const runningA = run(s0, a, T)
    const runningB = run(s0, b, T) // the same version as runningA, another dispatcher
    const failedOnce = attemptFailed(runningA, record, {
      n: 1,
      now: T + 1,
      error: { code: 'NO_QUORUM', message: '' },
      random: half,
    })
    const succeeded = succeed(runningB, {
      n: 1,
      now: T + 2,
      result: { ...job.run, commits: [] },
      receipts: [],
    })
    const committed = markCommitted(succeeded, T + 3)
    const cancelled = cancelJob(failedOnce, signCancel(job.enqueuer, job.id, T), T + 4)
    return { job, s0, runningA, runningB, failedOnce, succeeded, committed, cancelled, record }
  }

  it('keep whichever state wins, whatever order keepers hear them in', async () => {
    const h = await histories()
    const all = [h.s0, h.runningA, h.runningB, h.failedOnce, h.succeeded, h.committed, h.cancelled]
    const merge = (states: JobState[]) => states.reduce((held, s) => (wins(s, held) ? s : held))
    const expected = encodeState(merge(all))
    // every order of these seven (a sample of the 5040, seeded) ends on the same state
    let seed = 7
    const rand = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed / 2 ** 31
    }
    for (let i = 0; i < 200; i++) {
      const order = [...all].sort(() => rand() - 0.5)
      assert.deepEqual(encodeState(merge(order)), expected)
      // hearing a state twice changes nothing
      assert.deepEqual(encodeState(merge([...order, ...order])), expected)
    }
    assert.deepEqual(merge(all), h.committed)
  })

  it('put a success above every other end, and a committed one above that', async () => {
    const h = await histories()
    assert.ok(wins(h.succeeded, h.cancelled))
    assert.ok(wins(h.succeeded, h.failedOnce))
    assert.ok(wins(h.committed, h.succeeded))
    assert.ok(wins(h.cancelled, h.failedOnce))
    assert.ok(!wins(h.failedOnce, h.cancelled))
    // an ended state beats one in progress, whatever its version
    const t = h.record.createdAt
    let busy = h.s0
    for (let i = 0; i < 5; i++) busy = run(busy, h.job.keeper, t)
    assert.ok(busy.version > h.cancelled.version)
    assert.ok(wins(h.cancelled, busy))
    // two states of one version from two dispatchers: exactly one of them wins
    assert.notEqual(wins(h.runningA, h.runningB), wins(h.runningB, h.runningA))
    for (const s of [h.s0, h.runningA, h.committed]) assert.equal(wins(s, s), false)
  })
})

describe('what two dispatchers charged', () => {
  // Two keepers whose views of who is alive differ both dispatch the job from one state: each
  // charges the enqueuer for its own attempt, and one branch's state wins outright.
  async function branches() {
    const key = await generateKey()
    const [a, b] = [keyId(await generateKey()), keyId(await generateKey())]
    const { record, id } = createJob(key, { fn: FN, export: 'f', retries: 5, budget: 100 }, T)
    const err = { code: 'NO_QUORUM', message: 'not yet' }
    const s0 = initialState(record)
    const branchA = attemptFailed(run(s0, a, T), record, {
      n: 1,
      now: T + 1,
      error: err,
      cost: 30,
      random: half,
    })
    const branchB = attemptFailed(run(s0, b, T), record, {
      n: 1,
      now: T + 2,
      error: err,
      cost: 20,
      random: half,
    })
    const [winner, loser] = wins(branchA, branchB) ? [branchA, branchB] : [branchB, branchA]
    return { record, id, a, b, s0, branchA, branchB, winner, loser, err }
  }
  const byKeeper = (charges: ReadonlyArray<{ keeper: string; amount: number }>) =>
    Object.fromEntries(charges.map((c) => [c.keeper, c.amount]))

  it('the winning state alone loses the other branch’s charge; paid keeps both, in either order of merge', async () => {
    const { a, b, branchA, branchB, winner, loser } = await branches()
    assert.equal(branchA.version, branchB.version)
    // the flaw: the state that wins says nothing of what the losing branch's keeper charged
    assert.equal(winner.charges.length, 1)
    assert.equal(chargedOf(winner), winner === branchA ? 30 : 20)
    const ab = mergeStates(branchA, branchB)
    const ba = mergeStates(branchB, branchA)
    assert.deepEqual(encodeState(ab), encodeState(ba))
    assert.deepEqual(byKeeper(paidOf(ab)), { [a]: 30, [b]: 20 })
    // the rest of the state is the winner's, and which state wins does not depend on paid
    assert.deepEqual(encodeState({ ...ab, paid: [] }), encodeState({ ...winner, paid: [] }))
    assert.ok(wins(ab, loser) && !wins(loser, ab))
    // hearing either branch again changes nothing
    assert.deepEqual(encodeState(mergeStates(ab, branchA)), encodeState(ab))
    assert.deepEqual(encodeState(mergeStates(loser, ab)), encodeState(ab))
  })

  it('keepers holding either branch end with the same state and both charges, however they hear them', async () => {
    const { id, a, b, s0, branchA, branchB, record } = await branches()
    const orders = [
      [branchA, branchB],
      [branchB, branchA],
      [branchB, s0, branchA, branchB],
    ]
    const held = orders.map((order) => {
      const store = openJobStore({ path: ':memory:' })
      store.put(id, { record }, order[0])
      const changed = order.slice(1).map((s) => store.merge(id, s)?.changed)
      const state = store.get(id)?.state
      store.close()
      assert.ok(state !== undefined)
      return { state, changed }
    })
    for (const h of held) assert.deepEqual(encodeState(h.state), encodeState(held[0].state))
    assert.deepEqual(byKeeper(paidOf(held[0].state)), { [a]: 30, [b]: 20 })
    // a losing branch heard late still changes what is held (its charge), then nothing more
    assert.deepEqual(held[0].changed, [true])
    assert.deepEqual(held[2].changed, [false, true, false])
  })

  it('a keeper that carries on charges on top of all both branches charged, within the budget', async () => {
    const { a, b, winner, loser, record, err } = await branches()
    const merged = mergeStates(winner, loser)
    const carrier = winner.attempts[0].dispatcher
    // it costs 70, and 50 is left of the budget of 100 after the two branches' 30 and 20
    const next = attemptFailed(run(merged, carrier, T + 3), record, {
      n: 2,
      now: T + 4,
      error: err,
      cost: 70,
      random: half,
    })
    assert.equal(next.attempts.at(-1)?.charged, 50)
    const paid = byKeeper(paidOf(next))
    assert.deepEqual(paid, carrier === a ? { [a]: 80, [b]: 20 } : { [a]: 30, [b]: 70 })
    assert.equal(chargedOf({ charges: paidWithin(next, record.budget) }), 100)
    // and the state it makes still wins over the branch that lost, with nothing of it lost
    assert.deepEqual(encodeState(mergeStates(next, loser)), encodeState(next))
  })

  it('a dispatcher adds its attempt to what it knows it charged, not to another keeper’s word for it; another’s word only makes it charge less', async () => {
    const { a, b, branchA, branchB, record, err } = await branches()
    const merged = mergeStates(branchA, branchB)
    // a keeper's word that a charged 60 (it charged 30), and b's own 20
    /** a's second attempt, costing 10, ended after it heard `word` of what each keeper charged */
    const secondAttempt = (word: typeof merged) =>
      attemptFailed(run(mergeStates(merged, word), a, T + 3), record, {
        n: 2,
        now: T + 4,
        error: err,
        cost: 10,
        own: 30,
        random: half,
      })
    const inflated = { ...merged, paid: merged.paid.map((c) => (c.keeper === a ? { ...c, amount: 60 } : c)) }
    const next = secondAttempt(inflated)
    assert.equal(next.attempts.at(-1)?.charged, 10)
    assert.equal(byKeeper(next.charges)[a], 40, 'its own 30 and the 10 of this attempt')
    // the word stays in paid (grow-only: no keeper can take back another's), and is what readers see
    assert.equal(byKeeper(paidOf(next))[a], 60)
    // a word that b charged 90 leaves a nothing of the budget of 100 to charge
    const greedy = { ...merged, paid: merged.paid.map((c) => (c.keeper === b ? { ...c, amount: 90 } : c)) }
    const capped = secondAttempt(greedy)
    assert.equal(capped.attempts.at(-1)?.charged, 0)
    assert.equal(byKeeper(capped.charges)[a] ?? 0, byKeeper(merged.charges)[a] ?? 0, 'unchanged')
  })

  it('a total past the budget the enqueuer signed is refused, forged or not', async () => {
    const { a, b, branchA, branchB, record } = await branches()
    const merged = mergeStates(branchA, branchB)
    assert.deepEqual(byKeeper(paidWithin(merged, record.budget)), { [a]: 30, [b]: 20 })
    assert.equal(
      errorCode(() => paidWithin(merged, 49)),
      'JOB_INVALID',
    )
    // a keeper's word for another's charge, past the budget: refused, and not recorded
    const forged = { ...merged, paid: merged.paid.map((c) => (c.keeper === b ? { ...c, amount: 71 } : c)) }
    assert.deepEqual(byKeeper(paidOf(forged)), { [a]: 30, [b]: 71 })
    assert.equal(
      errorCode(() => paidWithin(forged, record.budget)),
      'JOB_INVALID',
    )
    // merged into a held state it is still refused: paid only grows
    assert.equal(
      errorCode(() => paidWithin(mergeStates(merged, forged), record.budget)),
      'JOB_INVALID',
    )
    // an amount that is none is not a state at all
    for (const amount of [-1, 1.5, Number.MAX_SAFE_INTEGER + 1])
      assert.equal(
        errorCode(() => parseState({ ...merged, paid: [{ keeper: a, amount }] })),
        'JOB_INVALID',
      )
  })
})

describe('backoff', () => {
  it('grows by doubling from its base, within [d/2, d], up to its cap', () => {
    for (let n = 1; n <= 40; n++) {
      const d = Math.min(10_000, 100 * 2 ** (n - 1))
      assert.equal(
        backoffMs(n, 100, 10_000, () => 0),
        d / 2,
      )
      assert.equal(
        backoffMs(n, 100, 10_000, () => 1),
        d,
      )
    }
  })
})
