/**
 * The playground: paste or upload a function, deploy it, call an export with arguments, k and q,
 * and see the value, fuel, logs, the certificate and who signed it, with a link anyone can open to
 * re-check the certificate. The browser signs with its own key; the node only relays. A browser
 * cannot bundle, so the node inspects the code (exports, imports; TypeScript types stripped)
 * without resolving or running anything, and a module that imports another is refused.
 */
import { useEffect, useState } from 'preact/hooks'
import {
  type Certificate,
  certificateFromJSON,
  certificateToJSON,
  type DeployResult,
  keyId,
  type PrivateKey,
} from '../../../client/index.ts'
import { toBase64 } from '../../../encoding/index.ts'
import type { Output } from '../../../exec/index.ts'
import { callerKey, newCallerKey, node, type Shown, short, shown } from '../node.ts'
import { Receipts } from '../receipts.tsx'
import { recheckLink } from '../recheck.ts'

const EXAMPLE = `// A function is an ES module; each export can be called.
export function greet(name, ctx) {
  ctx.log(\`greeting \${name}\`)
  return \`Hello, \${name}!\`
}

export function add(a, b) {
  return a + b
}
`

interface Deployed {
  cid: string
  exports: string[]
  holders?: number
  wanted?: number
}

interface CallResult {
  value: unknown
  output: Output
  certificate: Certificate
  ms: number
  link: string
  /** set when the quorum certified that the function failed */
  failure?: Shown
}

function ErrorBox({ error }: { error: Shown }) {
  return (
    <div class="error" role="alert">
      <b>{error.code}</b> {error.message}
      {error.hint && <div class="hint">hint: {error.hint}</div>}
    </div>
  )
}

function NumberField(props: { label: string; value: number; set(n: number): void; max?: number }) {
  return (
    <label>
      {props.label}{' '}
      <input
        type="number"
        min={1}
        max={props.max}
        value={props.value}
        onInput={(e) => props.set(Number(e.currentTarget.value))}
      />
    </label>
  )
}

/**
 * The function's manifest block (hash-checked by the SDK), base64, for a re-check link: whoever
 * opens it checks it against the function's CID and needs no node to have it.
 */
async function manifestOf(fn: string): Promise<string> {
  return toBase64(await node.getBlock(fn))
}

function parseArgs(text: string): unknown[] {
  let args: unknown
  try {
    args = JSON.parse(text.trim() === '' ? '[]' : text)
  } catch (err) {
    throw { code: 'INVALID_INPUT', message: `the arguments are not JSON: ${(err as Error).message}` }
  }
  if (!Array.isArray(args))
    throw { code: 'INVALID_INPUT', message: 'the arguments are a JSON array, e.g. ["Ada"] or [2, 3]' }
  return args
}

function Result({ result }: { result: CallResult }) {
  const { certificate, output } = result
  return (
    <div class="result" data-testid="result">
      {result.failure ? (
        <ErrorBox error={result.failure} />
      ) : (
        <>
          <h3>Value</h3>
          <pre class="value" data-testid="value">
            {JSON.stringify(result.value, null, 2)}
          </pre>
        </>
      )}
      <dl>
        <dt>fuel</dt>
        <dd data-testid="fuel">{certificate.receipts[0]?.fuel}</dd>
        <dt>time</dt>
        <dd>{result.ms} ms</dd>
        <dt>request</dt>
        <dd class="mono">{certificate.id}</dd>
        <dt>output hash</dt>
        <dd class="mono">{certificate.outputHash}</dd>
      </dl>
      <h3>Logs</h3>
      {output.logs.length === 0 ? (
        <p class="muted">none</p>
      ) : (
        <pre class="logs">{output.logs.join('\n')}</pre>
      )}
      <h3>
        Certificate: {certificate.receipts.length} of {certificate.request.k} executors signed (quorum{' '}
        {certificate.request.q}), checked in this browser
      </h3>
      <Receipts receipts={certificateToJSON(certificate).receipts} fullIds />
      <p>
        <a href={result.link} target="_blank" rel="noopener" data-testid="recheck-link">
          Re-check this certificate
        </a>{' '}
        <span class="muted">
          — a link anyone can open: the certificate travels in the link’s fragment, which no server sees, and
          is checked in their browser.
        </span>
      </p>
    </div>
  )
}

export function PlaygroundPage() {
  const [key, setKey] = useState<PrivateKey | undefined>()
  const [code, setCode] = useState(EXAMPLE)
  const [typescript, setTypescript] = useState(false)
  const [name, setName] = useState('playground')
  const [tags, setTags] = useState('demo')
  const [cidInput, setCidInput] = useState('')
  const [deployed, setDeployed] = useState<Deployed | undefined>()
  const [exportName, setExportName] = useState('')
  const [args, setArgs] = useState('["Ada"]')
  const [k, setK] = useState(3)
  const [q, setQ] = useState(2)
  const [fuel, setFuel] = useState(2000)
  const [busy, setBusy] = useState<'deploy' | 'call' | undefined>()
  const [error, setError] = useState<Shown | undefined>()
  const [result, setResult] = useState<CallResult | undefined>()

  useEffect(() => {
    void callerKey().then(setKey)
  }, [])

  const use = (d: Deployed): void => {
    setDeployed(d)
    setExportName(d.exports[0] ?? '')
    setResult(undefined)
  }

  const deploy = async (): Promise<void> => {
    setBusy('deploy')
    setError(undefined)
    try {
      const inspected = await node.inspect(code, { typescript })
      const out: DeployResult = await node.deploy(inspected.code, {
        key,
        exports: inspected.exports,
        name: name.trim() || undefined,
        tags: tags
          .split(',')
          .map((t) => t.trim())
          .filter((t) => t !== ''),
      })
      use({ cid: out.cid, exports: out.exports, holders: out.holders.length, wanted: out.wanted })
    } catch (err) {
      setError(shown(err))
    } finally {
      setBusy(undefined)
    }
  }

  const load = async (): Promise<void> => {
    setBusy('deploy')
    setError(undefined)
    try {
      const info = await node.getFunction(cidInput.trim())
      use({ cid: info.cid, exports: info.manifest.exports })
    } catch (err) {
      setError(shown(err))
    } finally {
      setBusy(undefined)
    }
  }

  const call = async (): Promise<void> => {
    if (deployed === undefined || key === undefined) return
    setBusy('call')
    setError(undefined)
    setResult(undefined)
    const started = performance.now()
    try {
      const r = await node.invoke(deployed.cid, exportName, parseArgs(args), {
        key,
        replicas: k,
        quorum: q,
        fuel,
      })
      const ms = Math.round(performance.now() - started)
      const link = await recheckLink(location.origin, {
        certificate: certificateToJSON(r.certificate),
        output: r.output,
        manifest: await manifestOf(deployed.cid),
      })
      setResult({ value: r.value, output: r.output, certificate: r.certificate, ms, link })
    } catch (err) {
      // A failure the quorum agreed on comes with its certificate: show it like a value.
      const details = (err as { details?: { certificate?: unknown; logs?: string[]; agreed?: boolean } })
        .details
      if (details?.agreed === true && details.certificate !== undefined) {
        const certificate = certificateFromJSON(details.certificate)
        const e = shown(err)
        // a failed call's output carries no value: its JSON text is `null`
        const output: Output = {
          json: 'null',
          logs: details.logs ?? [],
          error: { code: e.code, message: e.message },
        }
        const link = await recheckLink(location.origin, {
          certificate: certificateToJSON(certificate),
          output,
          manifest: await manifestOf(deployed.cid),
        })
        setResult({
          value: null,
          output,
          certificate,
          ms: Math.round(performance.now() - started),
          link,
          failure: e,
        })
      } else setError(shown(err))
    } finally {
      setBusy(undefined)
    }
  }

  const upload = async (file: File | undefined): Promise<void> => {
    if (file === undefined) return
    setCode(await file.text())
    setTypescript(/\.(ts|mts)$/.test(file.name))
    setName(file.name.replace(/\.[^.]+$/, ''))
  }

  return (
    <section>
      <h1>Playground</h1>
      <p class="lede">
        Deploy a function to the network and call it through a quorum. Requests are signed in this browser
        with your own key{' '}
        <span class="mono" title={key === undefined ? '' : keyId(key)} data-testid="caller">
          {key === undefined ? '…' : short(keyId(key))}
        </span>{' '}
        (kept in this browser’s storage){' '}
        <button type="button" class="link" onClick={() => void newCallerKey().then(setKey)}>
          new key
        </button>
        .
      </p>
      <div class="split">
        <div class="panel grow">
          <h2>1. The function</h2>
          <textarea
            class="code"
            spellcheck={false}
            value={code}
            onInput={(e) => setCode(e.currentTarget.value)}
            aria-label="function source"
          />
          <div class="row">
            <label>
              <input
                type="checkbox"
                checked={typescript}
                onChange={(e) => setTypescript(e.currentTarget.checked)}
              />{' '}
              TypeScript
            </label>
            <label class="file">
              upload a file{' '}
              <input
                class="file-input"
                type="file"
                accept=".js,.mjs,.ts,.mts"
                onChange={(e) => void upload(e.currentTarget.files?.[0])}
              />
            </label>
          </div>
          <div class="row">
            <label>
              name <input value={name} onInput={(e) => setName(e.currentTarget.value)} />
            </label>
            <label>
              tags <input value={tags} onInput={(e) => setTags(e.currentTarget.value)} placeholder="a, b" />
            </label>
            <button
              type="button"
              class="primary"
              disabled={busy !== undefined || key === undefined}
              onClick={deploy}
            >
              {busy === 'deploy' ? 'Deploying…' : 'Deploy'}
            </button>
          </div>
          <p class="muted small">
            One self-contained ES module: a function that imports npm packages is deployed with{' '}
            <code>npx covenant deploy fn.ts</code>, which bundles them. Or call one already deployed:
          </p>
          <div class="row">
            <input
              class="grow mono"
              placeholder="function CID (bafyrei…)"
              value={cidInput}
              onInput={(e) => setCidInput(e.currentTarget.value)}
            />
            <button type="button" disabled={busy !== undefined || cidInput.trim() === ''} onClick={load}>
              Use it
            </button>
          </div>
        </div>
        <div class="panel grow">
          <h2>2. Call it</h2>
          {deployed === undefined ? (
            <p class="empty">Deploy a function (or name one) to call it.</p>
          ) : (
            <>
              <p>
                function{' '}
                <span class="mono" data-testid="function-cid">
                  {deployed.cid}
                </span>
                {deployed.holders !== undefined && (
                  <span class="muted">
                    {' '}
                    · stored on {deployed.holders}/{deployed.wanted} nodes
                  </span>
                )}
              </p>
              <div class="row">
                <label>
                  export{' '}
                  <select value={exportName} onChange={(e) => setExportName(e.currentTarget.value)}>
                    {deployed.exports.map((x) => (
                      <option key={x} value={x}>
                        {x}
                      </option>
                    ))}
                  </select>
                </label>
                <label class="grow">
                  arguments (a JSON array){' '}
                  <input class="mono" value={args} onInput={(e) => setArgs(e.currentTarget.value)} />
                </label>
              </div>
              <div class="row">
                <NumberField label="k (executors)" value={k} set={setK} max={16} />
                <NumberField label="q (quorum)" value={q} set={setQ} max={16} />
                <NumberField label="fuel" value={fuel} set={setFuel} />
                <button type="button" class="primary" disabled={busy !== undefined} onClick={call}>
                  {busy === 'call' ? 'Calling…' : 'Call'}
                </button>
              </div>
            </>
          )}
          {error && <ErrorBox error={error} />}
          {result && <Result result={result} />}
        </div>
      </div>
    </section>
  )
}
