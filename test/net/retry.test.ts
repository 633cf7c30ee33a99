/**
 * retryTransient: what a busy or broken connection lost goes again, a refusal does not, and the
 * tries are bounded.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { CovenantError } from '../../src/errors/index.ts'
import { retryTransient } from '../../src/net/index.ts'

/** A send that fails with `codes` in turn, then succeeds; counts its calls. */
function sender(codes: string[]) {
  const calls = { n: 0 }
  const send = async () => {
    const code = codes[calls.n++]
    if (code !== undefined) throw new CovenantError(code as never, `failed with ${code}`)
    return { ok: true }
  }
  return { send, calls }
}

describe('retryTransient', () => {
  it('sends again after a busy peer and a broken connection, and gets through', async () => {
    const { send, calls } = sender(['PEER_BUSY', 'PEER_UNREACHABLE'])
    const failures: string[] = []
    const ok = await retryTransient(send, { baseMs: 1, onFailure: (code) => failures.push(code) })
    assert.equal(ok, true)
    assert.equal(calls.n, 3)
    assert.deepEqual(failures, ['PEER_BUSY', 'PEER_UNREACHABLE'])
  })

  it('does not send again what the peer refused', async () => {
    const { send, calls } = sender(['INVALID_CONFLICT', 'PEER_BUSY'])
    assert.equal(await retryTransient(send, { baseMs: 1 }), false)
    assert.equal(calls.n, 1)
  })

  it('gives up after its tries, and never rejects', async () => {
    const { send, calls } = sender(Array(10).fill('PEER_TIMEOUT'))
    assert.equal(await retryTransient(send, { baseMs: 1, tries: 3 }), false)
    assert.equal(calls.n, 3)
    const thrower = async () => {
      throw new Error('not even a CovenantError')
    }
    assert.equal(await retryTransient(thrower, { baseMs: 1 }), false)
  })

  it('stops once told the process is stopping', async () => {
    let stopping = false
    const { send, calls } = sender(Array(10).fill('PEER_BUSY'))
    const ok = await retryTransient(
      async () => {
        stopping = true
        return send()
      },
      { baseMs: 1, stopped: () => stopping },
    )
    assert.equal(ok, false)
    assert.equal(calls.n, 1)
  })
})
