/**
 * Fuzzing every in-process reader of outside input: the covenant YAML parser, the JSON forms,
 * the verifiers and the byte decoders. Each refuses with a typed CovenantError (never INTERNAL,
 * never a TypeError, RangeError or stack overflow), and a real signed message changed in one place
 * is refused, or is the same message after all (a reordered map, say).
 */
import assert from 'node:assert/strict'
import { before, describe, it } from 'node:test'
import * as dagCbor from '@ipld/dag-cbor'
import fc from 'fast-check'
import { stringify } from 'yaml'
import {
  authorizeWrite,
  checkChain,
  grantFromJSON,
  verifyGrant,
  verifyRevocation,
  verifyWriteInvocation,
} from '../../src/caps/index.ts'
import { cidForBytes, decodeManifest, manifestLabel, ownTags } from '../../src/content/index.ts'
import {
  CovenantConfigSchema,
  covenantToYaml,
  decodeSignedCovenant,
  parseCovenantYaml,
  signedCovenantFromJSON,
  verifySignedCovenant,
} from '../../src/covenant/index.ts'
import {
  checkRead,
  decodeEntry,
  encodeEntry,
  parseCommit,
  verifyDescriptor,
} from '../../src/datastore/index.ts'
import { bytesFieldsFromJSON } from '../../src/encoding/index.ts'
import { CovenantError, ErrorJSONSchema, isErrorCode } from '../../src/errors/index.ts'
import {
  certificateFromJSON,
  checkRequest,
  conflictFromJSON,
  requestFromJSON,
  verifyCertificate,
  verifyConflict,
  verifyReceipt,
  verifyRefusal,
  verifyRequest,
} from '../../src/exec/index.ts'
import { canonicalBytes, keyId } from '../../src/keys/index.ts'
import {
  chequeFromJSON,
  depositFromJSON,
  verifyCheque,
  verifyDeposit,
  verifyInvoice,
} from '../../src/ledger/index.ts'
import { replyEnvelopeSchema } from '../../src/net/index.ts'
import {
  cborValue,
  deepValue,
  edgeString,
  encoded,
  jsonValue,
  messageBytes,
  mutated,
  mutatedBytes,
  shortText,
  text,
} from './arbitraries.ts'
import { fuzz, outcome } from './fuzz.ts'
import { makeSamples, type Samples } from './samples.ts'

/** Fails unless an accepted value is the sample itself (same canonical bytes). */
function sameAs(accepted: unknown, original: unknown, what: string): void {
  assert.deepEqual(
    canonicalBytes(accepted),
    canonicalBytes(original),
    `${what}: a changed message was accepted`,
  )
}

/** A string of YAML pieces: directives, anchors, aliases, tags, flow and block syntax, scalars of every kind. */
const yamlPiece = fc.oneof(
  { weight: 3, arbitrary: shortText },
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      'statement: ',
      'store:',
      'serve:',
      'execute:',
      'credit: ',
      'enabled: true',
      'maxBytes: 1GiB',
      'maxFuel: ',
      'refusedTags:',
      'allowedPublishers: [12D3KooWLRPJAA5o6nbPRKAxyR1Vbmu2hTSPJ6EgxMiTKzL8EWGg]',
      '- nsfw',
      '&a ',
      '&b ',
      '*a',
      '*b',
      '*nowhere',
      '<<: *a',
      '!!str ',
      '!!binary ',
      '!!int ',
      '!!float ',
      '!!bool ',
      '!!null ',
      '!!set ',
      '!!omap ',
      '!!pairs ',
      '!!map ',
      '!!seq ',
      '!!timestamp ',
      '!custom ',
      '!<tag:yaml.org,2002:str> ',
      '!!js/function ',
      '? ',
      ': ',
      '- ',
      '|',
      '>-',
      '|+',
      '|2',
      '---',
      '...',
      '%YAML 1.1',
      '%YAML 1.2',
      '%YAML 9.9',
      '%TAG ! tag:x.org,2000:',
      '%TAG !e! tag:e,2000:',
      '[',
      ']',
      '{',
      '}',
      ',',
      '"',
      "'",
      '"\\u0000\\uD800\\x00"',
      '#',
      '\t',
      '  ',
      '\n',
      '\n  ',
      '\r',
      '\ufeff',
      '~',
      'null',
      '.inf',
      '-.inf',
      '.nan',
      '0x1F',
      '0o17',
      '0b101',
      '1e999',
      '99999999999999999999999',
      '-0',
      '1_000',
      'yes',
      'off',
      '2001-12-14t21:59:43.10-05:00',
      '__proto__: {enabled: true}',
    ),
  },
)

/** YAML built to hurt: alias bombs, deep nesting, huge scalars, many keys. */
const hostileYaml = fc.oneof(
  fc.tuple(fc.integer({ min: 2, max: 12 }), fc.integer({ min: 2, max: 12 })).map(([levels, width]) => {
    const lines = ['a0: &a0 [x, x]']
    for (let i = 1; i <= levels; i++)
      lines.push(
        `a${i}: &a${i} [${Array(width)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      )
    return lines.join('\n')
  }),
  fc
    .tuple(fc.integer({ min: 10, max: 3000 }), fc.constantFrom('[', '{a: ', '- ', '? ', '!!seq ['))
    .map(([n, open]) => `store: ${open.repeat(n)}`),
  fc
    .integer({ min: 10, max: 2000 })
    .map((n) => Array.from({ length: n }, (_, i) => `${' '.repeat(i)}a:`).join('\n')),
  fc
    .tuple(fc.constantFrom('statement', 'credit', 'store'), fc.integer({ min: 1000, max: 2_000_000 }))
    .map(([k, n]) => `${k}: ${'x'.repeat(n)}`),
  fc
    .integer({ min: 100, max: 1000 })
    .map((n) => Array.from({ length: n }, (_, i) => `k${i}: ${i}`).join('\n')),
  fc.integer({ min: 2, max: 50 }).map((n) => Array.from({ length: n }, () => '--- {}').join('\n')),
)

describe('fuzz: codecs (in process)', () => {
  let s: Samples
  before(async () => {
    s = await makeSamples()
  })

  it('parseCovenantYaml: COVENANT_INVALID or a config that writes back to itself', async (t) => {
    const configs = s.covenant.yaml.map((y) => JSON.parse(JSON.stringify(parseCovenantYaml(y))))
    const input = fc.oneof(
      fc.array(yamlPiece, { maxLength: 40 }).map((parts) => parts.join('')),
      hostileYaml,
      text,
      mutated(configs, true).map(({ value }) => {
        // the same object twice: YAML writes it once with an anchor, then aliases it
        const v = value as Record<string, unknown>
        const doc =
          typeof v === 'object' && v !== null && !Array.isArray(v)
            ? { ...v, shared: v.store, again: v.store }
            : v
        try {
          // the YAML writer takes its time over long strings; JSON is YAML too
          const json = JSON.stringify(doc)
          return json.length > 20_000 ? json : stringify(doc)
        } catch {
          // too deep to write: as deep, by hand
          return `store: ${'[{a: '.repeat(5000)}`
        }
      }),
      mutatedBytes(s.covenant.yaml.map((y) => new TextEncoder().encode(y))).map(({ value }) =>
        new TextDecoder().decode(value),
      ),
    )
    await fuzz(
      t,
      'covenant-yaml',
      fc.property(input, (yaml) => {
        const r = outcome(() => parseCovenantYaml(yaml), ['COVENANT_INVALID'])
        if (!r.ok) return
        assert.deepEqual(CovenantConfigSchema.parse(r.value), r.value)
        assert.deepEqual(parseCovenantYaml(covenantToYaml(r.value)), r.value)
      }),
    )
  })

  it('signed covenants: decoded, verified, read from JSON', async (t) => {
    const original = verifySignedCovenant(s.covenant.signed)
    const input = fc.oneof(
      mutated([s.covenant.signed]).map(({ value }) => ({ how: 'value' as const, value })),
      mutated([s.covenant.json], true).map(({ value }) => ({ how: 'json' as const, value })),
      mutatedBytes([s.covenant.bytes]).map(({ value }) => ({ how: 'bytes' as const, value })),
    )
    await fuzz(
      t,
      'signed-covenant',
      fc.property(input, ({ how, value }) => {
        const r = outcome(() =>
          how === 'json'
            ? signedCovenantFromJSON(value)
            : how === 'bytes'
              ? decodeSignedCovenant(value as Uint8Array)
              : verifySignedCovenant(value),
        )
        if (r.ok) sameAs(r.value, original, 'signed covenant')
      }),
    )
  })

  it('manifests: decoded and read as labels', async (t) => {
    const input = fc.oneof(
      mutatedBytes([s.manifest.bytes]).map(({ value }) => value),
      mutated([s.manifest.value]).map(({ value }) => encoded(value)),
    )
    await fuzz(
      t,
      'manifest',
      fc.property(input, (bytes) => {
        fc.pre(bytes !== undefined)
        const r = outcome(() => decodeManifest(bytes))
        if (r.ok)
          assert.deepEqual(canonicalBytes(r.value), s.manifest.bytes, 'a changed manifest was accepted')
        const label = outcome(() => manifestLabel(bytes))
        assert.equal(label.ok, r.ok)
        assert.ok(Array.isArray(ownTags(cidForBytes(bytes, 'dag-cbor'), bytes)))
      }),
    )
  })

  it('requests: read from JSON and the wire, checked', async (t) => {
    const timestamp = (s.request.value as { timestamp: number }).timestamp
    const input = fc.oneof(
      mutated([s.request.json], true).map(({ value }) => ({ json: true, value })),
      mutated([s.request.value]).map(({ value }) => ({ json: false, value })),
      jsonValue.map((value) => ({ json: true, value })),
    )
    await fuzz(
      t,
      'request',
      fc.property(input, ({ json, value }) => {
        const r = outcome(() => {
          const request = json ? requestFromJSON(value) : value
          const { id } = checkRequest(request)
          verifyRequest(request, timestamp)
          return id
        })
        if (r.ok) assert.equal(r.value, s.request.id, 'a changed request was accepted')
      }),
    )
  })

  it('receipts and refusals: verified', async (t) => {
    const samples = [...s.receipts, s.refusal]
    await fuzz(
      t,
      'receipt-refusal',
      fc.property(mutated(samples), fc.boolean(), ({ sample, value }, asRefusal) => {
        const r = outcome(() => (asRefusal ? verifyRefusal(value) : verifyReceipt(value)))
        if (r.ok) sameAs(r.value, sample, 'receipt or refusal')
      }),
    )
  })

  it('certificates: read from JSON and the wire, verified against a view', async (t) => {
    const options = { view: s.view, manifest: s.manifest.selection }
    verifyCertificate(s.certificate.value, options)
    const signers = new Set(
      (s.certificate.value as { receipts: Array<{ executor: string }> }).receipts.map((r) => r.executor),
    )
    const input = fc.oneof(
      mutated([s.certificate.json], true).map(({ value }) => ({ json: true, value })),
      mutated([s.certificate.value]).map(({ value }) => ({ json: false, value })),
    )
    await fuzz(
      t,
      'certificate',
      fc.property(input, ({ json, value }) => {
        const r = outcome(() => verifyCertificate(json ? certificateFromJSON(value) : value, options))
        if (!r.ok) return
        const c = r.value.certificate
        assert.equal(c.id, s.certificate.id)
        assert.equal(c.outputHash, s.certificate.outputHash)
        for (const receipt of c.receipts)
          assert.ok(signers.has(receipt.executor), 'a signer the certificate did not have')
      }),
    )
  })

  it('conflict evidence: read from JSON and the wire, verified against a view', async (t) => {
    const options = { view: s.view, manifest: s.manifest.selection }
    const original = verifyConflict(s.conflict.value, options).conflict
    const input = fc.oneof(
      mutated([s.conflict.json], true).map(({ value }) => ({ json: true, value })),
      mutated([s.conflict.value]).map(({ value }) => ({ json: false, value })),
    )
    await fuzz(
      t,
      'conflict',
      fc.property(input, ({ json, value }) => {
        const r = outcome(() => verifyConflict(json ? conflictFromJSON(value) : value, options))
        if (!r.ok) return
        sameAs(r.value.conflict.receipt, original.receipt, 'accused receipt')
        assert.equal(r.value.conflict.certificate.id, original.certificate.id)
      }),
    )
  })

  it('grants: read from JSON, chains checked and verified, writes authorized', async (t) => {
    const ctx = {
      namespace: s.namespace.id,
      owner: s.namespace.owner,
      writer: { key: keyId(s.writer) },
      now: Date.now(),
    }
    const tokens = s.grant.value.chain
    const input = fc.oneof(
      mutated([s.grant.json], true).map(({ value }) => ({ how: 'json' as const, value })),
      mutated([s.grant.chain, s.grant.long.chain]).map(({ value }) => ({ how: 'chain' as const, value })),
      mutatedBytes([...tokens, ...s.grant.long.chain]).map(({ value }) => ({
        how: 'chain' as const,
        value: [value, ...tokens.slice(1)],
      })),
      fc
        .array(fc.oneof(messageBytes, cborValue), { maxLength: 10 })
        .map((value) => ({ how: 'chain' as const, value })),
      fc
        .tuple(
          mutated([s.grant.chain, s.grant.long.chain]),
          fc.array(fc.oneof(text, edgeString), { maxLength: 4 }),
        )
        .map(([{ value }, keys]) => ({ how: 'authorize' as const, value, keys })),
    )
    await fuzz(
      t,
      'grant',
      fc.property(input, (c) => {
        if (c.how === 'authorize') {
          outcome(() => authorizeWrite({ ...ctx, grants: [c.value], keys: c.keys }))
          return
        }
        const r = outcome(() => {
          const chain = c.how === 'json' ? grantFromJSON(c.value).chain : c.value
          checkChain(chain, ctx)
          return verifyGrant(chain, ctx)
        })
        if (r.ok) {
          assert.equal(r.value.cid, s.grant.value.cid, 'a changed grant was accepted')
          assert.equal(r.value.prefix, 'notes/')
        }
      }),
    )
  })

  it('write invocations: decoded and verified', async (t) => {
    const ctx = { namespace: s.namespace.id, now: Date.now() }
    const original = verifyWriteInvocation(s.commit.invocation, ctx)
    const token = dagCbor.decode(s.commit.invocation)
    const input = fc.oneof(
      mutatedBytes([s.commit.invocation]).map(({ value }) => value),
      mutated([token]).map(({ value }) => encoded(value)),
    )
    await fuzz(
      t,
      'invocation',
      fc.property(input, (bytes) => {
        fc.pre(bytes !== undefined)
        const r = outcome(() => verifyWriteInvocation(bytes, ctx))
        if (r.ok) assert.equal(r.value.cid, original.cid, 'a changed invocation was accepted')
      }),
    )
  })

  it('revocations: verified against a namespace', async (t) => {
    const ctx = { namespace: s.namespace.id, owner: s.namespace.owner }
    const original = verifyRevocation(s.revocation, ctx)
    const { ucan, chain } = s.revocation as { ucan: Uint8Array; chain: Uint8Array[] }
    const input = fc.oneof(
      mutated([s.revocation]).map(({ value }) => value),
      mutatedBytes([ucan]).map(({ value }) => ({ ucan: value, chain })),
    )
    await fuzz(
      t,
      'revocation',
      fc.property(input, (value) => {
        const r = outcome(() => verifyRevocation(value, ctx))
        if (r.ok) assert.equal(r.value.cid, original.cid, 'a changed revocation was accepted')
      }),
    )
  })

  it('namespace descriptors and signed reads: verified', async (t) => {
    const ns = { id: s.namespace.id, owner: s.namespace.owner, public: false }
    const original = verifyDescriptor(s.namespace.descriptor)
    const input = fc.oneof(
      mutated([s.namespace.descriptor]).map(({ value }) => ({ how: 'descriptor' as const, value })),
      mutated([s.namespace.json], true).map(({ value }) => ({ how: 'json' as const, value })),
      mutated([s.namespace.readToken]).map(({ value }) => ({ how: 'read' as const, value })),
    )
    await fuzz(
      t,
      'descriptor-read',
      fc.property(input, ({ how, value }) => {
        if (how === 'read') {
          const r = outcome(() => checkRead(ns, value))
          if (r.ok) sameAs(value, s.namespace.readToken, 'signed read')
          return
        }
        const r = outcome(() =>
          verifyDescriptor(how === 'json' ? bytesFieldsFromJSON(value, ['signature']) : value),
        )
        if (r.ok) sameAs(r.value, original, 'descriptor')
      }),
    )
  })

  it('entries and commits: decoded and parsed', async (t) => {
    const entry = dagCbor.decode(s.commit.entry)
    const input = fc.oneof(
      mutatedBytes([s.commit.entry]).map(({ value }) => ({ entry: true, value: value as unknown })),
      mutated([entry]).map(({ value }) => ({ entry: true, value: encoded(value) as unknown })),
      mutated([s.commit.value]).map(({ value }) => ({ entry: false, value })),
    )
    await fuzz(
      t,
      'entry-commit',
      fc.property(input, ({ entry: isEntry, value }) => {
        if (!isEntry) {
          outcome(() => parseCommit(value))
          return
        }
        fc.pre(value !== undefined)
        const r = outcome(() => decodeEntry(value))
        // an entry is not signed as a whole: whatever is accepted is canonical, its bytes its only spelling
        if (r.ok) assert.deepEqual(encodeEntry(r.value), value)
      }),
    )
  })

  it('cheques, deposits and invoices: verified, read from JSON', async (t) => {
    const verifiers = {
      cheque: (v: unknown) => verifyCheque(v),
      chequeJSON: (v: unknown) => verifyCheque(chequeFromJSON(v)),
      deposit: (v: unknown) => verifyDeposit(v),
      depositJSON: (v: unknown) => verifyDeposit(depositFromJSON(v)),
      invoice: (v: unknown) => verifyInvoice(v),
    }
    const originals = {
      cheque: s.cheque.value,
      chequeJSON: s.cheque.value,
      deposit: s.deposit.value,
      depositJSON: s.deposit.value,
      invoice: s.invoice,
    }
    const input = fc.oneof(
      mutated([s.cheque.value]).map(({ value }) => ({ kind: 'cheque' as const, value })),
      mutated([s.cheque.json], true).map(({ value }) => ({ kind: 'chequeJSON' as const, value })),
      mutated([s.deposit.value]).map(({ value }) => ({ kind: 'deposit' as const, value })),
      mutated([s.deposit.json], true).map(({ value }) => ({ kind: 'depositJSON' as const, value })),
      mutated([s.invoice]).map(({ value }) => ({ kind: 'invoice' as const, value })),
    )
    await fuzz(
      t,
      'cheque-deposit-invoice',
      fc.property(input, ({ kind, value }) => {
        const r = outcome(() => verifiers[kind](value))
        if (r.ok) sameAs(r.value, originals[kind], kind)
      }),
    )
  })

  it('byte decoders: arbitrary bytes and values', async (t) => {
    const ns = s.namespace.id
    const decoders: Array<(b: Uint8Array) => unknown> = [
      (b) => decodeManifest(b),
      (b) => decodeSignedCovenant(b),
      (b) => decodeEntry(b),
      (b) => verifyWriteInvocation(b, { namespace: ns, now: Date.now() }),
      (b) =>
        verifyGrant([b], {
          namespace: ns,
          owner: s.namespace.owner,
          writer: { key: s.namespace.owner },
          now: 0,
        }),
      (b) => verifyRevocation({ ucan: b, chain: [b] }, { namespace: ns, owner: s.namespace.owner }),
    ]
    const values: Array<(v: unknown) => unknown> = [
      verifySignedCovenant,
      verifyReceipt,
      verifyRefusal,
      checkRequest,
      requestFromJSON,
      certificateFromJSON,
      conflictFromJSON,
      grantFromJSON,
      verifyDescriptor,
      parseCommit,
      verifyCheque,
      verifyInvoice,
      chequeFromJSON,
      depositFromJSON,
      (v) => verifyCertificate(v, { view: s.view, manifest: s.manifest.selection }),
      (v) => verifyConflict(v, { view: s.view, manifest: s.manifest.selection }),
      (v) => checkRead({ id: ns, owner: s.namespace.owner, public: false }, v),
    ]
    await fuzz(
      t,
      'byte-decoders',
      fc.property(
        fc.oneof(
          messageBytes.map((bytes) => ({ bytes, value: undefined as unknown })),
          fc.oneof(cborValue, jsonValue, deepValue).map((value) => ({ bytes: undefined, value })),
        ),
        fc.nat(),
        ({ bytes, value }, pick) => {
          if (bytes !== undefined) outcome(() => decoders[pick % decoders.length](bytes))
          else outcome(() => values[pick % values.length](value))
        },
      ),
    )
  })

  it('error replies: any value read back as a typed error', async (t) => {
    await fuzz(
      t,
      'error-json',
      fc.property(
        fc.oneof(
          cborValue,
          jsonValue,
          fc.record({ code: fc.oneof(text, edgeString), message: fc.oneof(text, cborValue) }),
        ),
        (v) => {
          const e = CovenantError.fromJSON(v)
          assert.ok(e instanceof CovenantError && isErrorCode(e.code))
          assert.ok(e.message.length <= 4096 + 200)
          replyEnvelopeSchema.safeParse(v)
          ErrorJSONSchema.safeParse(v)
        },
      ),
    )
  })
})
