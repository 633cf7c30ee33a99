/**
 * Re-checks a certificate in the visitor's browser: the link's fragment carries the certificate
 * and the output it is claimed for; nothing is sent anywhere (see `recheck.ts`).
 */
import { useEffect, useState } from 'preact/hooks'
import { Receipts } from '../receipts.tsx'
import { decodeRecheck, type RecheckData, type RecheckResult, recheck } from '../recheck.ts'

type State =
  | { status: 'empty' }
  | { status: 'unreadable'; message: string }
  | { status: 'checked'; data: RecheckData; result: RecheckResult }

export function VerifyPage({ rest }: { rest: string }) {
  const [state, setState] = useState<State>({ status: 'empty' })
  useEffect(() => {
    if (rest === '') {
      setState({ status: 'empty' })
      return
    }
    decodeRecheck(rest).then(
      (data) => setState({ status: 'checked', data, result: recheck(data) }),
      (err) => setState({ status: 'unreadable', message: (err as Error).message }),
    )
  }, [rest])

  return (
    <section>
      <h1>Re-check a certificate</h1>
      <p class="lede">
        A quorum certificate is the signed receipts of independently chosen executors that computed the same
        output. This page checks one here, in your browser, with the SDK’s <code>verifyCertificate</code>: the
        caller’s signature on the request, each executor’s signature on its receipt, that enough distinct
        executors agree, and that the value shown is the output they signed. The certificate came in the
        link’s fragment, which no server sees.
      </p>
      {state.status === 'empty' && (
        <p class="empty">Open a re-check link from the Playground to check its certificate.</p>
      )}
      {state.status === 'unreadable' && (
        <div class="error" role="alert">
          <b>This link holds no readable certificate.</b> {state.message}
        </div>
      )}
      {state.status === 'checked' && <Checked data={state.data} result={state.result} />}
    </section>
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
          request.
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
          <dt>{output.error === null ? 'value' : 'failure'}</dt>
          <dd>
            <pre class="value">
              {output.error === null
                ? JSON.stringify(output.value, null, 2)
                : `${output.error.code}: ${output.error.message}`}
            </pre>
          </dd>
        </dl>
        <Receipts receipts={certificate.receipts} fullIds />
      </div>
    </>
  )
}
