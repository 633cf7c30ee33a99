import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import type { Manifest } from '../../src/content/index.ts'
import { CovenantError } from '../../src/errors/index.ts'
import { createView } from '../../src/exec/index.ts'
import {
  checkDoc,
  createJob,
  enqueuedDocs,
  enqueuedRecords,
  JOB_DEFAULTS,
  type JobDoc,
  jobDepth,
  jobId,
  jobsOf,
  MAX_JOB_DEPTH,
} from '../../src/jobs/index.ts'
import { generateKey, keyId } from '../../src/keys/index.ts'
import { verifyRunWithView } from '../../src/node/index.ts'
import type { EffectJob } from '../../src/sandbox/index.ts'
import { attemptThatEnqueues, modelVerifier, type Network, network, runThatEnqueues } from './fixtures.ts'

const rejectsWith = (p: Promise<unknown>, code: string, message?: RegExp) =>
  assert.rejects(p, (e: CovenantError) => {
    assert.equal(e.code, code)
    if (message !== undefined) assert.match(e.message, message)
    return true
  })

describe('jobs a function enqueues', () => {
  let net: Network
  let jobs: EffectJob[]
  before(async () => {
    net = await network()
    jobs = [
      { fn: net.fn, export: 'f', args: [1], options: {} },
      {
        fn: net.fn,
        export: 'f',
        args: [2],
        options: { runAfterMs: 60_000, retries: 7, replicas: 5, quorum: 4 },
      },
      { fn: net.fn, export: 'main', args: [], options: { replicas: 1 } },
    ]
  })

  it('follow from the run alone: the same run gives the same records and ids', async () => {
    const { certificate, output, caller } = await runThatEnqueues(net, jobs, { signJobs: true })
    const run = { request: certificate.request, id: certificate.id }
    const records = enqueuedRecords(run, jobs)
    assert.deepEqual(enqueuedRecords(run, jobs), records)
    const [a, b, c] = records
    assert.equal(a.enqueuer, keyId(caller))
    assert.equal(a.createdAt, certificate.request.timestamp)
    assert.equal(a.runAfter, certificate.request.timestamp)
    assert.equal(a.fuel, certificate.request.fuel) // the run's limits carry over
    assert.deepEqual([a.k, a.q, a.retries], [JOB_DEFAULTS.k, JOB_DEFAULTS.q, JOB_DEFAULTS.retries])
    assert.deepEqual([b.k, b.q, b.retries, b.runAfter - b.createdAt], [5, 4, 7, 60_000])
    assert.deepEqual([c.k, c.q], [1, 1]) // q defaults to at most k
    assert.deepEqual(
      records.map((r) => r.origin),
      [0, 1, 2].map((index) => ({ request: certificate.id, index })),
    )
    const docs = await enqueuedDocs({ certificate, output }, modelVerifier(net))
    assert.deepEqual(
      docs.map((d) => d.id),
      records.map(jobId),
    )
    assert.equal(new Set(docs.map((d) => d.id)).size, 3)
    assert.deepEqual(jobsOf(output), jobs)
    assert.deepEqual(jobsOf({ json: '1', logs: [], error: null }), [])
  })

  it('are held by a keeper only with the certified run that enqueued them', async () => {
    const { certificate, output } = await runThatEnqueues(net, jobs, { signJobs: true })
    const verify = modelVerifier(net)
    const docs = await enqueuedDocs({ certificate, output }, verify)
    for (const { doc, id } of docs) assert.equal((await checkDoc(doc, verify)).id, id)
  })

  it('cannot be added to a run, changed, or borrowed from another run', async () => {
    const verify = modelVerifier(net)
    const { certificate, output } = await runThatEnqueues(net, jobs, { signJobs: true })
    const [{ doc }] = await enqueuedDocs({ certificate, output }, verify)
    assert.ok('proof' in doc)
    // a job the run did not enqueue, slipped into its output: the receipts no longer sign it
    const added = { ...output, jobs: [...jobs, { fn: net.fn, export: 'f', args: ['evil'], options: {} }] }
    await rejectsWith(enqueuedDocs({ certificate, output: added }, verify), 'INVALID_CERTIFICATE')
    // a record changed after the run: it is not the one the run enqueued
    await rejectsWith(
      checkDoc({ ...doc, record: { ...doc.record, args: ['evil'] } }, verify),
      'INVALID_CERTIFICATE',
    )
    await rejectsWith(
      checkDoc({ ...doc, record: { ...doc.record, retries: 16 } }, verify),
      'INVALID_CERTIFICATE',
    )
    await rejectsWith(
      checkDoc({ ...doc, record: { ...doc.record, origin: { ...doc.record.origin, index: 9 } } }, verify),
      'INVALID_CERTIFICATE',
    )
    // the same record with another run as its proof
    const other = await runThatEnqueues(net, jobs, { signJobs: true })
    await rejectsWith(
      checkDoc({ ...doc, proof: { certificate: other.certificate, output: other.output } }, verify),
      'INVALID_CERTIFICATE',
    )
    // a record with neither signature nor proof
    await rejectsWith(checkDoc({ record: doc.record }, verify), 'JOB_INVALID')
  })

  it('are refused by a node when the receipts do not sign them: jobs added to a certified run', async () => {
    const { certificate, output } = await runThatEnqueues(net, jobs, { signJobs: false })
    const manifests = new Map<string, Manifest>([[net.fn, net.manifest]])
    const verify = verifyRunWithView({
      view: () => net.view,
      manifest: async (fn) => {
        const m = manifests.get(fn)
        if (m === undefined) throw new CovenantError('BLOCK_NOT_FOUND', fn)
        return m
      },
    })
    await rejectsWith(enqueuedDocs({ certificate, output }, verify), 'INVALID_CERTIFICATE', /output/)
    // and it checks the certificate against its own view first
    const stranger = verifyRunWithView({ view: () => createView([]), manifest: async () => net.manifest })
    await rejectsWith(enqueuedDocs({ certificate, output }, stranger), 'INVALID_CERTIFICATE')
    await rejectsWith(enqueuedDocs({ certificate: { nope: 1 }, output }, verify), 'INVALID_CERTIFICATE')
  })

  it('of a job’s run are paid for by that job’s enqueuer, and come with that job’s doc, however deep', async () => {
    const verify = modelVerifier(net)
    const enqueuer = await generateKey()
    const parent = createJob(enqueuer, { fn: net.fn, export: 'main' })
    const run = await attemptThatEnqueues(net, parent, jobs)
    const docs = await enqueuedDocs({ ...run, job: { record: parent.record } }, verify)
    // not the keeper that signed the attempt's request: the job's enqueuer
    assert.ok(docs.every(({ doc }) => doc.record.enqueuer === keyId(enqueuer)))
    for (const { doc, id } of docs) {
      assert.equal((await checkDoc(doc, verify)).id, id)
      assert.equal(jobDepth(doc), 1)
    }
    // a job of a job of a job: still the first enqueuer's, each with the job it came from
    let job = docs[2]
    for (let depth = 2; depth <= 3; depth++) {
      const next = await attemptThatEnqueues(net, { record: job.doc.record, id: job.id }, jobs)
      const [first] = await enqueuedDocs({ ...next, job: job.doc }, verify)
      assert.equal(first.doc.record.enqueuer, keyId(enqueuer))
      assert.equal((await checkDoc(first.doc, verify)).id, first.id)
      assert.equal(jobDepth(first.doc), depth)
      job = first
    }
  })

  it('of a job’s run are refused without that job, with another job, with a forged one, or charged to the keeper', async () => {
    const verify = modelVerifier(net)
    const [enqueuer, victim] = await Promise.all([generateKey(), generateKey()])
    const parent = createJob(enqueuer, { fn: net.fn, export: 'main' })
    const run = await attemptThatEnqueues(net, parent, jobs)
    const [{ doc }] = await enqueuedDocs({ ...run, job: { record: parent.record } }, verify)
    assert.ok('proof' in doc)
    const { job: _, ...bare } = doc.proof
    // without the job: no one would pay
    await rejectsWith(enqueuedDocs(run, verify), 'JOB_INVALID', /enqueuer pays/)
    await rejectsWith(checkDoc({ ...doc, proof: bare }, verify), 'JOB_INVALID')
    // the record as it was before jobs of jobs were paid for: the keeper that signed the run as enqueuer
    const byKeeper = enqueuedRecords({ request: run.certificate.request, id: run.certificate.id }, jobs)[0]
    assert.equal(byKeeper.enqueuer, run.keeper)
    await rejectsWith(checkDoc({ record: byKeeper, proof: doc.proof }, verify), 'INVALID_CERTIFICATE')
    // another job of the victim's, which this run is no attempt of
    const other = createJob(victim, { fn: net.fn, export: 'main' })
    await rejectsWith(
      checkDoc({ ...doc, proof: { ...bare, job: { record: other.record } } }, verify),
      'JOB_INVALID',
    )
    // the job with the victim named as its enqueuer: not signed by the victim
    const forged = { ...parent.record, enqueuer: keyId(victim) }
    await rejectsWith(enqueuedDocs({ ...run, job: { record: forged } }, verify), 'INVALID_SIGNATURE')
    // a record that claims to come from a run, without the run
    const { signature: __, ...unsigned } = parent.record
    await rejectsWith(
      enqueuedDocs(
        { ...run, job: { record: { ...unsigned, origin: { request: run.certificate.id, index: 0 } } } },
        verify,
      ),
      'JOB_INVALID',
    )
    // a run that is no job's attempt, with a job attached
    const plain = await runThatEnqueues(net, jobs, { signJobs: true })
    await rejectsWith(enqueuedDocs({ ...plain, job: { record: parent.record } }, verify), 'JOB_INVALID')
  })

  it('nest at most MAX_JOB_DEPTH deep', async () => {
    const verify = modelVerifier(net)
    const enqueuer = await generateKey()
    const one = [{ fn: net.fn, export: 'main', args: [], options: { replicas: 1 } }]
    const root = createJob(enqueuer, { fn: net.fn, export: 'main', k: 1, q: 1 })
    let job: { doc: JobDoc; id: string } = { doc: { record: root.record }, id: root.id }
    for (let depth = 1; depth <= MAX_JOB_DEPTH; depth++) {
      const run = await attemptThatEnqueues(net, { record: job.doc.record, id: job.id }, one)
      ;[job] = await enqueuedDocs({ ...run, job: job.doc }, verify)
      assert.equal(jobDepth(job.doc), depth)
    }
    assert.equal((await checkDoc(job.doc, verify)).id, job.id)
    const run = await attemptThatEnqueues(net, { record: job.doc.record, id: job.id }, one)
    await rejectsWith(enqueuedDocs({ ...run, job: job.doc }, verify), 'JOB_INVALID', /deep/)
  })
})
