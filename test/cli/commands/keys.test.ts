/** `covenant keys`: one caller identity, created once, shown the same way every time. */
import assert from 'node:assert/strict'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { isKeyId } from '../../../src/keys/index.ts'
import { covenant } from '../../fixtures/cli.ts'

describe('covenant keys', () => {
  let home: string
  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'covenant-keys-cli-'))
  })
  after(() => rm(home, { recursive: true, force: true }))

  const keys = async (...args: string[]) =>
    (await covenant(['keys', ...args], { env: { ...process.env, COVENANT_HOME: home } })).stdout

  it('creates the caller key on first use and shows the same id afterwards', async () => {
    const first = JSON.parse(await keys('--json'))
    assert.equal(first.ok, true)
    assert.ok(isKeyId(first.id))
    assert.equal(first.file, join(home, 'key'))
    assert.equal((await stat(first.file)).mode & 0o777, 0o600)
    assert.match(await keys(), new RegExp(`^${first.id}\\n`))
    const other = JSON.parse(await keys('--json', '--key', join(home, 'other.key')))
    assert.notEqual(other.id, first.id)
  })
})
