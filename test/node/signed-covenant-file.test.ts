import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { it } from 'node:test'
import { CovenantConfigSchema, DEFAULT_COVENANT, verifySignedCovenant } from '../../src/covenant/index.ts'
import { generateKey } from '../../src/keys/index.ts'
import { loadOrSignCovenant } from '../../src/node/index.ts'

it('keeps the covenant version across restarts and bumps it only when the config changes', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'covenant-sc-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const key = await generateKey()
  const first = await loadOrSignCovenant(dir, key, DEFAULT_COVENANT)
  assert.equal(first.version, 1)
  const again = await loadOrSignCovenant(dir, key, DEFAULT_COVENANT)
  assert.equal(again.version, 1)
  assert.equal(again.issuedAt, first.issuedAt)
  const changed = CovenantConfigSchema.parse({ ...DEFAULT_COVENANT, statement: 'now with a statement' })
  const bumped = await loadOrSignCovenant(dir, key, changed)
  assert.equal(bumped.version, 2)
  verifySignedCovenant(bumped)
  // a data dir copied from another key does not carry its version over
  const other = await loadOrSignCovenant(dir, await generateKey(), changed)
  assert.equal(other.version, 1)
})
