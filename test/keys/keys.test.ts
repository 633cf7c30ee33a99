import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { CovenantError } from '../../src/errors/index.ts'
import {
  decodeKey,
  encodeKey,
  generateKey,
  isKeyId,
  KeyIdSchema,
  keyId,
  loadOrCreateKey,
  SignatureJSONSchema,
  SignatureSchema,
  signBytes,
  signValue,
  verifyBytes,
  verifyValue,
} from '../../src/keys/index.ts'

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

  it('refuses every kind of bad key file with INVALID_INPUT and its path, and never overwrites it', async () => {
    const secp = privateKeyToProtobuf(await generateKeyPair('secp256k1'))
    const files: Array<[string, Uint8Array | string]> = [
      ['empty.key', ''],
      ['random.key', crypto.getRandomValues(new Uint8Array(68))],
      ['truncated.key', encodeKey(await generateKey()).subarray(0, 20)],
      ['secp256k1.key', secp],
    ]
    for (const [name, content] of files) {
      const file = join(dir, name)
      await writeFile(file, content)
      await assert.rejects(loadOrCreateKey(file), (err: CovenantError) => {
        assert.ok(err instanceof CovenantError)
        assert.equal(err.code, 'INVALID_INPUT')
        assert.ok(err.message.includes(file), err.message)
        return true
      })
      assert.deepEqual(
        new Uint8Array(await readFile(file)),
        typeof content === 'string' ? new TextEncoder().encode(content) : content,
      )
    }
    assert.throws(
      () => decodeKey(secp),
      (e: CovenantError) => e.code === 'INVALID_INPUT' && /Ed25519/.test(e.message),
    )
    // a directory where the key file should be
    const folder = join(dir, 'folder.key')
    await mkdir(folder)
    await assert.rejects(
      loadOrCreateKey(folder),
      (e: CovenantError) => e instanceof CovenantError && e.code === 'INVALID_INPUT',
    )
  })

  it('takes a signature it made or checked before for nothing but its own signer and bytes', async () => {
    const key = await generateKey()
    const other = await generateKey()
    const bytes = new TextEncoder().encode('pay 1 credit')
    const sig = signBytes(key, bytes)
    // checked twice (the second from what the process remembers), and again under any other name
    assert.equal(verifyBytes(keyId(key), bytes, sig), true)
    assert.equal(verifyBytes(keyId(key), bytes, sig), true)
    assert.equal(verifyBytes(keyId(other), bytes, sig), false)
    const changed = new TextEncoder().encode('pay 9 credit')
    assert.equal(verifyBytes(keyId(key), changed, sig), false)
    assert.equal(verifyBytes(keyId(key), bytes.subarray(1), sig), false)
    const tampered = Uint8Array.from(sig)
    tampered[63] ^= 1
    assert.equal(verifyBytes(keyId(key), bytes, tampered), false)
    // the bytes a check remembers are its own copy: changing the caller's buffer changes nothing
    const mine = new TextEncoder().encode('covenant')
    const mineSig = signBytes(key, mine)
    mine[0] ^= 1
    assert.equal(verifyBytes(keyId(key), mine, mineSig), false)
    assert.equal(verifyBytes(keyId(key), new TextEncoder().encode('covenant'), mineSig), true)
  })

  it('answers false, never throws, for every malformed signer id, signature or value', async () => {
    const key = await generateKey()
    const bytes = new TextEncoder().encode('covenant')
    const sig = signBytes(key, bytes)
    assert.equal(verifyBytes(keyId(key), bytes, sig), true)
    const secpId = peerIdFromPrivateKey(await generateKeyPair('secp256k1')).toString()
    const ids: unknown[] = [
      '',
      'x',
      'not-a-peer-id',
      secpId,
      'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N',
      'bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy',
      `${keyId(key)}x`,
      keyId(key).slice(0, -1),
      42,
      null,
    ]
    for (const id of ids) {
      assert.equal(verifyBytes(id as string, bytes, sig), false, String(id))
      assert.equal(isKeyId(id as string), false, String(id))
      assert.equal(KeyIdSchema.safeParse(id).success, false, String(id))
    }
    const tampered = Uint8Array.from(sig)
    tampered[10] ^= 1
    const sigs: unknown[] = [
      new Uint8Array(0),
      sig.subarray(0, 63),
      new Uint8Array([...sig, 0]),
      tampered,
      'sig',
      null,
      [...sig],
    ]
    for (const s of sigs) {
      assert.equal(verifyBytes(keyId(key), bytes, s as Uint8Array), false)
      assert.equal(verifyValue(keyId(key), 'covenant', s as Uint8Array), false)
    }
    // values DAG-CBOR cannot encode are never verified
    assert.equal(verifyValue(keyId(key), { a: undefined }, sig), false)
    assert.equal(
      verifyValue(keyId(key), () => 1, sig),
      false,
    )
    // and a signature by another key is not one
    assert.equal(verifyBytes(keyId(await generateKey()), bytes, sig), false)
    assert.equal(isKeyId(keyId(key)), true)
    assert.equal(SignatureSchema.safeParse(sig).success, true)
    assert.equal(SignatureSchema.safeParse(sig.subarray(1)).success, false)
    assert.equal(SignatureJSONSchema.safeParse(Buffer.from(sig).toString('base64')).success, true)
    assert.equal(
      SignatureJSONSchema.safeParse(Buffer.from(sig.subarray(1)).toString('base64')).success,
      false,
    )
  })
})
