/**
 * The attacker's workbench: tokens made with `@ipld/dag-ucan` directly, bypassing every check
 * `delegateWrite` makes, so the holder's checks are what is tested. Also a namespace id and keys.
 */
import * as dagCbor from '@ipld/dag-cbor'
import * as UCAN from '@ipld/dag-ucan'
import * as Signature from '@ipld/dag-ucan/signature'
import { keyDid, namespaceResource } from '../../src/caps/index.ts'
import { cidForBytes, parseCid } from '../../src/content/index.ts'
import { keyId, type PrivateKey, signBytes } from '../../src/keys/index.ts'

/** A namespace id as the datastore makes them: a dag-cbor CID. */
export function testNamespace(label: string): string {
  return cidForBytes(dagCbor.encode({ test: label }), 'dag-cbor').toString()
}

/** A function's manifest CID stand-in. */
export function testFunction(label: string): string {
  return cidForBytes(dagCbor.encode({ fn: label }), 'dag-cbor').toString()
}

export interface CraftInit {
  /** the key that signs */
  signer: PrivateKey
  /** the DID the token claims as issuer; @default the signer's */
  issuer?: string
  audience: string
  can?: string
  with?: string
  nb?: Record<string, unknown>
  /** seconds, or null for never */
  exp?: number | null
  nbf?: number
  proofs?: string[]
  nonce?: string
}

/** A token exactly as told, signed by `signer` whatever issuer it claims. */
export async function craft(
  init: CraftInit & { namespace?: string },
): Promise<{ cid: string; bytes: Uint8Array }> {
  const issuerDid = init.issuer ?? keyDid(keyId(init.signer))
  const view = await UCAN.issue({
    issuer: {
      did: () => issuerDid as UCAN.DID,
      signatureAlgorithm: 'EdDSA',
      signatureCode: Signature.EdDSA,
      sign: <T>(payload: UCAN.ByteView<T>) =>
        Signature.create(Signature.EdDSA, signBytes(init.signer, payload)) as UCAN.SignatureView<
          T,
          typeof Signature.EdDSA
        >,
    },
    audience: { did: () => init.audience as UCAN.DID },
    capabilities: [
      {
        with: (init.with ?? namespaceResource(init.namespace!)) as UCAN.Resource,
        can: (init.can ?? 'store/write') as UCAN.Ability,
        nb: init.nb ?? { prefix: '' },
      },
    ],
    expiration: init.exp === null ? Number.POSITIVE_INFINITY : (init.exp ?? 4_000_000_000),
    notBefore: init.nbf,
    proofs: (init.proofs ?? []).map((p) => parseCid(p)) as unknown as UCAN.Link[],
    nonce: init.nonce,
  })
  const bytes = UCAN.encode(view)
  return { cid: cidForBytes(bytes, 'dag-cbor').toString(), bytes }
}

/** `bytes` decoded as DAG-CBOR, changed by `edit`, and encoded again (the signature is kept). */
export function tamper(bytes: Uint8Array, edit: (token: Record<string, unknown>) => void): Uint8Array {
  const token = dagCbor.decode(bytes) as Record<string, unknown>
  edit(token)
  return dagCbor.encode(token)
}
