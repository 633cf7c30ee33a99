/** The Node and browser Ed25519 implementations agree byte for byte and check each other. */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import * as browser from '../../src/keys/ed25519.browser.ts'
import * as node from '../../src/keys/ed25519.ts'
import { generateKey } from '../../src/keys/index.ts'

describe('ed25519', () => {
  it('signs the same bytes in Node and in a browser bundle, and each verifies the other', async () => {
    const key = await generateKey()
    const message = new TextEncoder().encode('covenant')
    const fromNode = node.sign(key, message)
    const fromBrowser = browser.sign(key, message)
    assert.deepEqual(fromBrowser, Uint8Array.from(fromNode))
    // the key object kept for signing signs as libp2p's own key does, every time
    assert.deepEqual(node.sign(key, message), Uint8Array.from(await key.sign(message)))
    const other = await generateKey()
    assert.deepEqual(node.sign(other, message), Uint8Array.from(await other.sign(message)))
    assert.notDeepEqual(node.sign(other, message), fromNode)
    assert.equal(node.verify(key.publicKey, message, fromBrowser), true)
    assert.equal(browser.verify(key.publicKey, message, fromNode), true)
    const tampered = Uint8Array.from(fromNode)
    tampered[0] ^= 1
    assert.equal(node.verify(key.publicKey, message, tampered), false)
    assert.equal(browser.verify(key.publicKey, message, tampered), false)
    assert.equal(browser.verify((await generateKey()).publicKey, message, fromNode), false)
  })
})
