import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import {
  type Cheque,
  ChequeJSONSchema,
  chequeFromJSON,
  chequeToJSON,
  depositFromJSON,
  depositToJSON,
  signCheque,
  signDeposit,
  verifyCheque,
  verifyDeposit,
} from '../../src/ledger/index.ts'
import { errorCode } from '../fixtures/errors.ts'
import { makeParty, type Party, T0 } from '../fixtures/ledger.ts'

describe('cheques', () => {
  let payer: Party
  let payee: Party
  let mallory: Party
  let cheque: Cheque

  before(async () => {
    ;[payer, payee, mallory] = await Promise.all([makeParty(), makeParty(), makeParty()])
    cheque = signCheque(payer.key, { payee: payee.peer, cumulative: 2_010_000, seq: 1, issuedAt: T0 })
  })

  it('is signed by its payer and verifies as a value, as DAG-CBOR and as JSON', () => {
    assert.equal(cheque.payer, payer.peer)
    assert.deepEqual(verifyCheque(cheque, { payee: payee.peer, payer: payer.peer }), cheque)
    assert.deepEqual(verifyCheque(dagCbor.decode(dagCbor.encode(cheque))), cheque)
    const json = JSON.parse(JSON.stringify(chequeToJSON(cheque)))
    assert.ok(ChequeJSONSchema.safeParse(json).success)
    assert.deepEqual(verifyCheque(chequeFromJSON(json)), cheque)
  })

  it('refuses a forged, altered, misdirected or malformed cheque with INVALID_CHEQUE', () => {
    const flipped = new Uint8Array(cheque.signature)
    flipped[5] ^= 1
    const cases: Array<[string, unknown, { payee?: string; payer?: string }?]> = [
      ['a raised amount', { ...cheque, cumulative: cheque.cumulative + 1 }],
      ['a lowered seq', { ...cheque, seq: 2 }],
      ['another payee written in', { ...cheque, payee: mallory.peer }],
      ['a flipped signature bit', { ...cheque, signature: flipped }],
      ['another payer claimed', { ...cheque, payer: mallory.peer }],
      [
        'signed by mallory in the payer’s name',
        {
          ...signCheque(mallory.key, { payee: payee.peer, cumulative: 9, seq: 1, issuedAt: T0 }),
          payer: payer.peer,
        },
      ],
      ['made out to someone else', cheque, { payee: mallory.peer }],
      ['from someone else than expected', cheque, { payer: mallory.peer }],
      ['a fraction of a nano-credit', { ...cheque, cumulative: 1.5 }],
      ['a negative amount', { ...cheque, cumulative: -1 }],
      ['an amount beyond 2^53', { ...cheque, cumulative: 2 ** 53 }],
      ['seq 0', { ...cheque, seq: 0 }],
      ['an extra field', { ...cheque, memo: 'hi' }],
      ['no signature', { ...cheque, signature: undefined }],
      ['not an object', 'cheque'],
      ['null', null],
    ]
    for (const [what, value, expect] of cases)
      assert.equal(
        errorCode(() => verifyCheque(value, expect)),
        'INVALID_CHEQUE',
        what,
      )
    assert.equal(
      errorCode(() => chequeFromJSON({ ...chequeToJSON(cheque), signature: 'not base64!' })),
      'INVALID_CHEQUE',
    )
    // a cheque to oneself cannot be signed, nor accepted
    assert.equal(
      errorCode(() => signCheque(payer.key, { payee: payer.peer, cumulative: 1, seq: 1, issuedAt: T0 })),
      'INVALID_INPUT',
    )
    assert.equal(
      errorCode(() => signCheque(payer.key, { payee: payee.peer, cumulative: 0.5, seq: 1, issuedAt: T0 })),
      'INVALID_INPUT',
    )
  })
})

describe('deposits', () => {
  it('are signed by the node that grants them and name the caller they credit', async () => {
    const [node, caller, mallory] = await Promise.all([makeParty(), makeParty(), makeParty()])
    const deposit = signDeposit(node.key, {
      payer: caller.peer,
      amount: 1000,
      id: 'faucet-0001',
      issuedAt: T0,
    })
    assert.equal(deposit.payee, node.peer)
    assert.deepEqual(verifyDeposit(deposit, { payer: caller.peer }), deposit)
    assert.deepEqual(
      verifyDeposit(depositFromJSON(JSON.parse(JSON.stringify(depositToJSON(deposit))))),
      deposit,
    )
    for (const [what, value, expect] of [
      ['a raised amount', { ...deposit, amount: 10_000 }],
      ['granted by someone else', { ...deposit, payee: mallory.peer }],
      [
        'self-minted by the caller',
        signDeposit(caller.key, { payer: caller.peer, amount: 1, id: 'mint-myself', issuedAt: T0 }),
      ],
      ['another caller', deposit, { payer: mallory.peer }],
      ['nothing deposited', { ...deposit, amount: 0 }],
    ] as Array<[string, unknown, { payer?: string }?]>)
      assert.equal(
        errorCode(() =>
          what === 'self-minted by the caller'
            ? verifyDeposit({ ...(value as object), payee: node.peer })
            : verifyDeposit(value, expect),
        ),
        'INVALID_DEPOSIT',
        what,
      )
  })
})
