/**
 * The network as this node sees it: every peer with its covenant (what it stores, executes and
 * refuses, its limits and price) and its liveness, as a table and as a picture of the key space.
 */
import type { PeerInfo } from '../../../client/index.ts'
import {
  type CovenantConfig,
  formatByteSize,
  peerPosition,
  signedCovenantFromJSON,
} from '../../../covenant/index.ts'
import { ago, formatBytes, node, short, usePoll } from '../node.ts'

type Covenant = NonNullable<PeerInfo['covenant']>

/** What a covenant refuses, in words; empty when it takes anything. */
export function refusals(c: CovenantConfig): string[] {
  const out: string[] = []
  if (!c.store.enabled) out.push('storing')
  if (!c.execute.enabled) out.push('executing')
  if (c.store.enabled && c.store.refusedTags.length > 0) out.push(`storing ${c.store.refusedTags.join(', ')}`)
  if (c.execute.enabled && c.execute.refusedTags.length > 0)
    out.push(`running ${c.execute.refusedTags.join(', ')}`)
  if (c.execute.enabled && c.execute.refusedPublishers.length > 0)
    out.push(`${c.execute.refusedPublishers.length} publisher(s)`)
  if (c.execute.enabled && c.execute.allowedPublishers.length > 0)
    out.push(`all but ${c.execute.allowedPublishers.length} publisher(s)`)
  return out
}

function signatureOk(covenant: Covenant): boolean {
  try {
    signedCovenantFromJSON(covenant)
    return true
  } catch {
    return false
  }
}

function size(bytes: number): string {
  const exact = formatByteSize(bytes)
  return typeof exact === 'string' ? exact : formatBytes(bytes)
}

function compact(n: number): string {
  return new Intl.NumberFormat('en', { notation: 'compact' }).format(n)
}

function State({ peer }: { peer: PeerInfo }) {
  if (peer.self) return <span class="badge self">this node</span>
  return peer.alive ? <span class="badge ok">alive</span> : <span class="badge dead">unreachable</span>
}

/** Where a peer sits in the key space: the first 32 bits of sha256 of its id, as an angle. */
function angleOf(id: string): number {
  const p = peerPosition(id)
  const turn = ((p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3]) >>> 0
  return (turn / 2 ** 32) * 2 * Math.PI - Math.PI / 2
}

function Ring({ peers }: { peers: PeerInfo[] }) {
  const r = 120
  const c = 170
  return (
    <svg class="ring" viewBox="0 0 340 340" role="img" aria-label="the peers on the key space">
      <circle cx={c} cy={c} r={r} class="ring-line" />
      <text x={c} y={c - 6} class="ring-caption">
        key space
      </text>
      <text x={c} y={c + 12} class="ring-caption small">
        sha256(peer id)
      </text>
      {peers.map((p) => {
        const a = angleOf(p.id)
        const x = c + r * Math.cos(a)
        const y = c + r * Math.sin(a)
        const lx = c + (r + 26) * Math.cos(a)
        const ly = c + (r + 26) * Math.sin(a)
        const refusing = p.covenant !== null && refusals(p.covenant.config).length > 0
        const state = p.self ? 'self' : p.alive ? 'alive' : 'dead'
        return (
          <g key={p.id} class={`peer ${state}${refusing ? ' refusing' : ''}`} data-peer={p.id}>
            <title>
              {p.id} — {state}
              {refusing ? `, refuses ${refusals(p.covenant!.config).join('; ')}` : ''}
            </title>
            {refusing && <circle cx={x} cy={y} r={14} class="refusal-halo" />}
            <circle cx={x} cy={y} r={9} class="dot" />
            <text x={lx} y={ly + 4} class="peer-label">
              …{p.id.slice(-4)}
            </text>
          </g>
        )
      })}
    </svg>
  )
}

function CovenantCells({ covenant }: { covenant: Covenant | null }) {
  if (covenant === null)
    return (
      <td colSpan={3} class="muted">
        no covenant heard yet
      </td>
    )
  const c = covenant.config
  const refused = refusals(c)
  return (
    <>
      <td>
        {c.store.enabled ? `up to ${size(c.store.maxBytes)}` : <span class="muted">stores nothing</span>}
      </td>
      <td>
        {c.execute.enabled ? (
          <>
            fuel ≤ {compact(c.execute.maxFuel)} · {c.execute.maxMemoryMiB} MiB ·{' '}
            {c.execute.maxWallClockMs / 1000} s
            <div class="muted">
              {c.execute.pricePerFuel} credits/fuel · {c.execute.concurrency} at once
            </div>
          </>
        ) : (
          <span class="muted">executes nothing</span>
        )}
      </td>
      <td>
        {refused.length === 0 ? (
          <span class="muted">nothing</span>
        ) : (
          <span class="badge warn" title={`refuses ${refused.join('; ')}`}>
            refuses {refused.join('; ')}
          </span>
        )}
      </td>
    </>
  )
}

export function NetworkPage() {
  const { data: peers, error } = usePoll(() => node.peers(), 2000)
  const list = peers ?? []
  const alive = list.filter((p) => p.self || p.alive).length
  const refusing = list.filter((p) => p.covenant !== null && refusals(p.covenant.config).length > 0).length
  const executors = list.filter((p) => (p.self || p.alive) && p.covenant?.config.execute.enabled).length
  return (
    <section>
      <h1>Network</h1>
      <p class="lede">
        The peers this node knows, each under its signed covenant: what it stores and executes, at what limits
        and price, and what it refuses. Executors and holders are picked from the live peers closest to a key.
      </p>
      {error && (
        <p class="error">
          Could not read the peer table: {error.code} {error.message}
        </p>
      )}
      <div class="split">
        <div class="panel ring-panel">
          <Ring peers={list} />
          <ul class="legend">
            <li>
              <span class="swatch self" /> this node
            </li>
            <li>
              <span class="swatch alive" /> alive
            </li>
            <li>
              <span class="swatch dead" /> unreachable
            </li>
            <li>
              <span class="swatch refusing" /> refuses something
            </li>
          </ul>
        </div>
        <div class="grow">
          <div class="cards">
            <div class="card">
              <b>{list.length}</b> peers
            </div>
            <div class="card">
              <b>{alive}</b> alive
            </div>
            <div class="card">
              <b>{executors}</b> executing
            </div>
            <div class="card">
              <b>{refusing}</b> refusing something
            </div>
          </div>
          <div class="panel">
            <h2>The key space</h2>
            <p>
              Each peer sits where the sha256 of its id puts it. A request, a block or a job has a key too,
              and the <i>k</i> live peers closest to it (by XOR distance) whose covenant accepts the work are
              the ones that do it: anyone with the same peer list picks the same ones. A peer that refuses
              something is left out of the work it refuses, and says so in its signed covenant.
            </p>
          </div>
        </div>
      </div>
      <div class="panel">
        <table class="peers">
          <thead>
            <tr>
              <th>peer</th>
              <th>state</th>
              <th>stores</th>
              <th>executes</th>
              <th>refuses</th>
              <th>covenant</th>
              <th>conflicts</th>
            </tr>
          </thead>
          <tbody>
            {list.map((p) => (
              <tr key={p.id} data-peer={p.id} class={p.alive || p.self ? undefined : 'faded'}>
                <td class="mono" title={p.id}>
                  {short(p.id)}
                  {p.covenant?.config.statement && (
                    <div class="statement">“{p.covenant.config.statement}”</div>
                  )}
                </td>
                <td>
                  <State peer={p} />
                  {!p.self && <div class="muted">{ago(p.lastSeen)}</div>}
                </td>
                <CovenantCells covenant={p.covenant} />
                <td>
                  {p.covenant === null ? (
                    '—'
                  ) : (
                    <>
                      v{p.covenant.version}{' '}
                      {signatureOk(p.covenant) ? (
                        <span class="ok-text" title="its signature checks out, here in the browser">
                          ✓ signed
                        </span>
                      ) : (
                        <span class="bad-text">signature invalid</span>
                      )}
                    </>
                  )}
                </td>
                <td class={p.conflicts > 0 ? 'bad-text' : 'muted'}>{p.conflicts}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </section>
  )
}
