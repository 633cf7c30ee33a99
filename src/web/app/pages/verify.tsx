/**
 * Re-checks a certificate in the visitor's browser: the link's fragment carries the certificate
 * and the output it is claimed for (and may carry the manifest and nodes to ask); the view of the
 * network it is checked against is built here from nodes' peer lists, and the page says which
 * (see `recheck.ts`). The certificate itself is sent nowhere.
 */
import { useEffect, useState } from 'preact/hooks'
import { short } from '../node.ts'
import { Receipts } from '../receipts.tsx'
import { decodeRecheck, type RecheckData, type RecheckResult, recheck, type Trusted } from '../recheck.ts'

type State =
  | { status: 'empty' }
  | { status: 'unreadable'; message: string }
  | { status: 'checking'; data: RecheckData }
  | { status: 'checked'; data: RecheckData; result: RecheckResult }

export function VerifyPage({ rest }: { rest: string }) {
  const [state, setState] = useState<State>({ status: 'empty' })
  useEffect(() => {
    if (rest === '') {
      setState({ status: 'empty' })
      return
    }
    let live = true
    decodeRecheck(rest).then(
      async (data) => {
        if (live) setState({ status: 'checking', data })
        const result = await recheck(data, location.origin)
        if (live) setState({ status: 'checked', data, result })
      },
      (err) => {
        if (live) setState({ status: 'unreadable', message: (err as Error).message })
      },
    )
    return () => {
      live = false
    }
  }, [rest])

  return (
    <section>
      <h1>Re-check a certificate</h1>
      <p class="lede">
        A quorum certificate is the signed receipts of the executors the network’s selection rule picked for a
        request, agreeing on one output. This page checks one here, in your browser, with the SDK’s{' '}
        <code>verifyCertificate</code>: the caller’s signature on the request, each executor’s signature on
        its receipt, that enough distinct executors agree, that they are the executors the selection picks
        from the network (every one ranked ahead of them accounted for), and that the value shown is the
        output they signed. The certificate came in the link’s fragment, which no server sees.
      </p>
      {state.status === 'empty' && (
        <p class="empty">Open a re-check link from the Playground to check its certificate.</p>
      )}
      {state.status === 'unreadable' && (
        <div class="error" role="alert">
          <b>This link holds no readable certificate.</b> {state.message}
        </div>
      )}
      {state.status === 'checking' && <p class="muted">Asking the network who its executors are…</p>}
      {state.status === 'checked' && <Checked data={state.data} result={state.result} />}
    </section>
  )
}

/** What the check took on trust: who said which peers make the network, and where the manifest came from. */
function TrustedBasis({ trusted }: { trusted: Trusted }) {
  const one = trusted.nodes.length === 1
  return (
    <div class="panel" data-testid="trusted">
      <h2>What this check trusts</h2>
      <p>
        Who the network’s executors are: a view of {trusted.peers} peers built in this browser from the peer
        lists of {one ? 'the node that served this page' : `${trusted.nodes.length} nodes`}, each peer listed
        by more than half of them with a covenant whose signature verifies here.{' '}
        {one
          ? 'With one node, this trusts that node to say who the executors are; a link may name more nodes to ask.'
          : 'This trusts a majority of these nodes to say who the executors are.'}
      </p>
      <ul class="mono small">
        {trusted.nodes.map((url) => (
          <li key={url}>
            {url}
            {!trusted.answered.includes(url) && (
              <span class="muted"> (did not answer: counts as listing no one)</span>
            )}
          </li>
        ))}
      </ul>
      <p>
        The function’s manifest (its tags and publisher, which selection reads):{' '}
        {trusted.manifest === 'link' &&
          'carried in the link, and taken because it hashes to the function’s CID.'}
        {trusted.manifest === 'node' &&
          'fetched from the node that served this page, and taken because it hashes to the function’s CID.'}
        {trusted.manifest === 'none' && 'not had, so nothing could be checked against it.'} Everything else —
        every signature, the selection and the output — is checked here and trusts no one.
      </p>
    </div>
  )
}

function Checked({ data, result }: { data: RecheckData; result: RecheckResult }) {
  const { certificate, output } = data
  const request = certificate.request
  return (
    <>
      {result.ok ? (
        <div class="verdict ok" data-testid="verdict">
          ✓ The certificate verifies: {certificate.receipts.length} executors signed this output for this
          request, and they are the executors the network picks for it (see what this check trusts, below).
        </div>
      ) : (
        <div class="verdict bad" data-testid="verdict">
          ✗ The certificate does not verify ({result.code}): {result.message}
        </div>
      )}
      <div class="panel">
        <dl>
          <dt>function</dt>
          <dd class="mono">
            {request.fn} <b>.{request.export}</b>
          </dd>
          <dt>arguments</dt>
          <dd class="mono">{JSON.stringify(request.args)}</dd>
          <dt>caller</dt>
          <dd class="mono">{request.caller}</dd>
          <dt>k, q</dt>
          <dd>
            {request.k} executors asked, {request.q} must agree
          </dd>
          <dt>request</dt>
          <dd class="mono">{certificate.id}</dd>
          {certificate.skipped.length > 0 && (
            <>
              <dt>skipped</dt>
              <dd>
                ranked ahead of the signers but did not sign:{' '}
                {certificate.skipped.map((s, i) => (
                  <span key={s.peer} class="mono" title={s.peer}>
                    {i > 0 && ', '}
                    {short(s.peer)}{' '}
                    <span class="muted">
                      (
                      {s.refusal
                        ? `refused: ${s.refusal.code}`
                        : s.receipt
                          ? 'signed another output'
                          : 'no answer'}
                      )
                    </span>
                  </span>
                ))}
              </dd>
            </>
          )}
          <dt>{output.error === null ? (result.ok ? 'value' : 'value claimed') : 'failure'}</dt>
          <dd>
            <pre class="value">
              {output.error !== null
                ? `${output.error.code}: ${output.error.message}`
                : result.ok
                  ? JSON.stringify(result.value, null, 2)
                  : output.json}
            </pre>
          </dd>
        </dl>
        <Receipts receipts={certificate.receipts} fullIds />
      </div>
      <TrustedBasis trusted={result.trusted} />
    </>
  )
}
