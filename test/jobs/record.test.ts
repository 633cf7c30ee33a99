import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseCid } from '../../src/content/index.ts'
import { DEFAULT_REQUEST_LIMITS, epochOf, mintTicket, verifyRequest } from '../../src/exec/index.ts'
import {
  checkJob,
  createJob,
  dispatchNonce,
  dispatchOf,
  dispatchRequest,
  JOB_DEFAULTS,
  JOB_LIMITS,
  jobId,
  jobKeyBytes,
  matchDispatch,
  signCancel,
  verifyCancel,
  verifyNewJob,
} from '../../src/jobs/index.ts'
import { generateKey, keyId, signValue } from '../../src/keys/index.ts'
import { errorCode } from '../fixtures/errors.ts'

const FN = 'bafyreibtmy5nghh46uv4kumxy5izkgriwbejlazudn4egt7beazkz4ojpm'
const NOW = 1_800_000_000_000
const HOUR = 3_600_000
const NS_A = 'bafyreiaiqdhwt3nbbztkqbmipehjztzqxtcnx3ggsn5hmkoigxcf2gm4ou'
const NS_B = 'bafyreigp7fz2d6uiz3wzeyspr4q6gluykv2wf3lqbx3dovagzojaxrr5ce'

describe('job records', () => {
  it('are signed by their enqueuer, with the defaults written once, and named by their CID', async () => {
    const key = await generateKey()
    const { record, id } = createJob(key, { fn: FN, export: 'add', args: [1, 2] }, NOW)
    assert.equal(id, jobId(record))
    assert.equal(parseCid(id).toString(), id)
    assert.deepEqual(jobKeyBytes(id), parseCid(id).bytes)
    assert.equal(record.enqueuer, keyId(key))
    assert.equal(record.createdAt, NOW)
    assert.equal(record.runAfter, NOW)
    assert.equal(record.deadline, NOW + JOB_DEFAULTS.windowMs)
    assert.equal(record.retries, JOB_DEFAULTS.retries)
    assert.deepEqual(
      { fuel: record.fuel, memoryMiB: record.memoryMiB, timeoutMs: record.timeoutMs },
      DEFAULT_REQUEST_LIMITS,
    )
    assert.deepEqual(checkJob(record), { record, id })
    assert.deepEqual(verifyNewJob(record, NOW + 1000), { record, id })
    // two identical jobs are two jobs
    assert.notEqual(createJob(key, { fn: FN, export: 'add', args: [1, 2] }, NOW).id, id)
  })

  it('refuse a record changed after signing, or signed by another key than its enqueuer', async () => {
    const key = await generateKey()
    const other = await generateKey()
    const { record } = createJob(key, { fn: FN, export: 'add', args: [1, 2] }, NOW)
    assert.equal(
      errorCode(() => checkJob({ ...record, args: [1, 3] })),
      'INVALID_SIGNATURE',
    )
    assert.equal(
      errorCode(() => checkJob({ ...record, retries: 16 })),
      'INVALID_SIGNATURE',
    )
    assert.equal(
      errorCode(() => checkJob({ ...record, enqueuer: keyId(other) })),
      'INVALID_SIGNATURE',
    )
    const { signature: _, ...body } = record
    assert.equal(
      errorCode(() => checkJob({ ...record, signature: signValue(other, body) })),
      'INVALID_SIGNATURE',
    )
    // without a signature and without an origin it is not a record at all
    assert.equal(
      errorCode(() => checkJob(body)),
      'JOB_INVALID',
    )
    assert.equal(
      errorCode(() => checkJob({ ...record, extra: 1 })),
      'JOB_INVALID',
    )
  })

  it('keep their bounds: tiers, q ≤ k, arguments, run-after, window and retries', async () => {
    const key = await generateKey()
    const bad: Array<[string, Parameters<typeof createJob>[1]]> = [
      ['q > k', { fn: FN, export: 'f', k: 2, q: 3 }],
      ['fuel off its tiers', { fn: FN, export: 'f', fuel: 2001 }],
      ['memory off its tiers', { fn: FN, export: 'f', memoryMiB: 65 }],
      ['too many retries', { fn: FN, export: 'f', retries: JOB_LIMITS.retries + 1 }],
      ['arguments too large', { fn: FN, export: 'f', args: ['x'.repeat(JOB_LIMITS.argsBytes)] }],
      ['arguments not JSON', { fn: FN, export: 'f', args: [Number.NaN] }],
      ['run before creation', { fn: FN, export: 'f', runAfter: NOW - 1 }],
      ['run too far ahead', { fn: FN, export: 'f', runAfter: NOW + JOB_LIMITS.runAfterMs + 1 }],
      ['deadline before run', { fn: FN, export: 'f', runAfter: NOW + 10, deadline: NOW + 10 }],
      ['window too long', { fn: FN, export: 'f', deadline: NOW + JOB_LIMITS.windowMs + 1 }],
      ['not a function CID', { fn: 'bafkreifoo', export: 'f' }],
      ['not an export name', { fn: FN, export: 'a-b' }],
      ['short nonce', { fn: FN, export: 'f', nonce: 'x' }],
    ]
    for (const [why, init] of bad)
      assert.equal(
        errorCode(() => createJob(key, init, NOW)),
        'JOB_INVALID',
        why,
      )
  })

  it('are enqueued only while fresh and still able to run', async () => {
    const key = await generateKey()
    const { record } = createJob(key, { fn: FN, export: 'f' }, NOW)
    assert.equal(
      errorCode(() => verifyNewJob(record, NOW - JOB_LIMITS.clockSkewMs - 1)),
      'JOB_INVALID',
    )
    assert.equal(
      errorCode(() => verifyNewJob(record, NOW + JOB_LIMITS.maxAgeMs + 1)),
      'JOB_INVALID',
    )
    const short = createJob(key, { fn: FN, export: 'f', deadline: NOW + 1000 }, NOW).record
    assert.equal(
      errorCode(() => verifyNewJob(short, NOW + 1000)),
      'DEADLINE_EXCEEDED',
    )
    // a record already kept is checked again without a clock
    assert.equal(
      errorCode(() => checkJob(short)),
      undefined,
    )
  })
})

describe('dispatch requests', () => {
  it('ask exactly what the record does, name the job, and end by the job’s deadline', async () => {
    const enqueuer = await generateKey()
    const keeper = await generateKey()
    const job = createJob(
      enqueuer,
      { fn: FN, export: 'add', args: [1, { a: 2 }], k: 5, q: 3, fuel: 20_000 },
      NOW,
    )
    const ticket = mintTicket(keyId(keeper), epochOf(NOW))
    const { request, id } = dispatchRequest(keeper, job, 4, ticket, NOW)
    assert.deepEqual(verifyRequest(request, NOW).id, id)
    assert.equal(request.caller, keyId(keeper))
    assert.equal(request.nonce, dispatchNonce(job.id, 4))
    assert.deepEqual(dispatchOf(request), { job: job.id, attempt: 4 })
    assert.equal(matchDispatch(job, request), 4)
    assert.ok(request.deadline <= job.record.deadline)
    // near the job's deadline, the attempt's deadline is the job's
    const late = dispatchRequest(keeper, job, 5, ticket, job.record.deadline - 10_000)
    assert.equal(late.request.deadline, job.record.deadline)
    assert.equal(
      errorCode(() => dispatchRequest(keeper, job, 6, ticket, job.record.deadline)),
      'DEADLINE_EXCEEDED',
    )
  })

  it('of another job, or asking anything else, are not attempts of this one', async () => {
    const enqueuer = await generateKey()
    const keeper = await generateKey()
    const job = createJob(enqueuer, { fn: FN, export: 'add', args: [1, 2] }, NOW)
    const other = createJob(enqueuer, { fn: FN, export: 'add', args: [1, 3] }, NOW)
    const ticket = mintTicket(keyId(keeper), epochOf(NOW))
    const theirs = dispatchRequest(keeper, other, 1, ticket, NOW).request
    assert.equal(
      errorCode(() => matchDispatch(job, theirs)),
      'JOB_INVALID',
    )
    // the other job's request relabelled with this job's id still asks for other arguments
    const relabelled = dispatchRequest(keeper, { ...other, id: job.id }, 1, ticket, NOW).request
    assert.equal(
      errorCode(() => matchDispatch(job, relabelled)),
      'JOB_INVALID',
    )
    for (const nonce of [
      'job/x/1',
      `job/${job.id}/0`,
      `job/${job.id}/1/2`,
      `xjob/${job.id}/1`,
      'plain-nonce',
    ])
      assert.equal(dispatchOf({ nonce }), undefined, nonce)
  })

  it('fix the version of every namespace the job reads, and only those', async () => {
    const enqueuer = await generateKey()
    const keeper = await generateKey()
    const [a, b] = [NS_A, NS_B]
    const job = createJob(enqueuer, { fn: FN, export: 'add', args: [a], stores: [a, b] }, NOW)
    const ticket = mintTicket(keyId(keeper), epochOf(NOW))
    const { request } = dispatchRequest(keeper, job, 1, ticket, NOW, { [a]: 7, [b]: 0 })
    assert.deepEqual(request.reads, { [a]: 7, [b]: 0 })
    assert.equal(matchDispatch(job, request), 1)
    // an attempt cannot leave one out
    assert.equal(
      errorCode(() => dispatchRequest(keeper, job, 2, ticket, NOW, { [a]: 7 })),
      'INTERNAL',
    )
    // a request fixing other namespaces than the job reads is not an attempt of it
    const plain = createJob(enqueuer, { fn: FN, export: 'add', args: [a] }, NOW)
    const other = dispatchRequest(
      keeper,
      { ...job, record: { ...job.record, stores: [a] } },
      1,
      ticket,
      NOW,
      {
        [a]: 7,
      },
    )
    assert.equal(
      errorCode(() => matchDispatch(job, other.request)),
      'JOB_INVALID',
    )
    const none = dispatchRequest(keeper, plain, 1, ticket, NOW).request
    assert.equal(none.reads, undefined)
    assert.equal(
      errorCode(() => matchDispatch({ ...plain, record: job.record }, none)),
      'JOB_INVALID',
    )
  })
})

describe('cancellations', () => {
  it('are the enqueuer’s alone, for the job they name', async () => {
    const key = await generateKey()
    const stranger = await generateKey()
    const job = createJob(key, { fn: FN, export: 'f' }, NOW)
    const cancel = signCancel(key, job.id, NOW + HOUR)
    assert.deepEqual(verifyCancel(cancel, job), cancel)
    assert.equal(
      errorCode(() => verifyCancel(signCancel(stranger, job.id), job)),
      'JOB_INVALID',
    )
    const other = createJob(key, { fn: FN, export: 'f' }, NOW)
    assert.equal(
      errorCode(() => verifyCancel(signCancel(key, other.id), job)),
      'JOB_INVALID',
    )
    assert.equal(
      errorCode(() => verifyCancel({ ...cancel, at: cancel.at + 1 }, job)),
      'INVALID_SIGNATURE',
    )
    assert.equal(
      errorCode(() => verifyCancel({ ...cancel, signature: new Uint8Array(3) }, job)),
      'JOB_INVALID',
    )
  })
})
