import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  attemptConflicted,
  attemptDeferred,
  attemptFailed,
  backoffMs,
  cancelJob,
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
