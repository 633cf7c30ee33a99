import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { isKeyId, keyId, loadOrCreateKey, signValue, verifyValue } from '../../src/keys/index.ts'

describe('key files', () => {
  let dir: string
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'covenant-keys-'))
  })
  after(() => rm(dir, { recursive: true, force: true }))

  it('creates a key readable only by its owner, and loads the same identity again', async () => {
    const file = join(dir, 'nested', 'node.key')
    const first = await loadOrCreateKey(file)
    assert.equal((await stat(file)).mode & 0o777, 0o600)
    const again = await loadOrCreateKey(file)
    assert.equal(keyId(again), keyId(first))
    assert.ok(isKeyId(keyId(first)))
    const sig = signValue(again, { hello: 'world' })
    assert.ok(verifyValue(keyId(first), { hello: 'world' }, sig))
    assert.ok(!verifyValue(keyId(first), { hello: 'there' }, sig))
  })

  it('refuses a damaged key file with its path, and leaves it as it was', async () => {
    const file = join(dir, 'damaged.key')
    await writeFile(file, 'not a key')
    await assert.rejects(loadOrCreateKey(file), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'INVALID_INPUT')
      assert.match(err.message, /damaged\.key is not a valid private key file/)
      return true
    })
    assert.equal(await readFile(file, 'utf8'), 'not a key')
  })

  it('never verifies a malformed signer id or signature', () => {
    assert.equal(verifyValue('not-a-peer-id', { a: 1 }, new Uint8Array(64)), false)
    assert.equal(isKeyId('QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'), false)
  })
})
