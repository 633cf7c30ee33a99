/**
 * The calls this node executes or gatewayes, live (server-sent events): function, export, caller,
 * fuel, time, outcome, the receipts of its certificate and any conflicts. The node never sends
 * arguments or outputs, so there are none to show.
 */
import { useEffect, useState } from 'preact/hooks'
import type { CallEvent } from '../../../client/index.ts'
import { clock, node, short } from '../node.ts'
import { Receipts } from '../receipts.tsx'

const KEEP = 200

/** Follows the node's calls feed, reconnecting after a drop; newest first. */
function useCalls(): { calls: CallEvent[]; live: boolean } {
  const [calls, setCalls] = useState<CallEvent[]>([])
  const [live, setLive] = useState(false)
  useEffect(() => {
    const stop = new AbortController()
    const follow = async (): Promise<void> => {
      while (!stop.signal.aborted) {
        try {
          setCalls([])
          setLive(true)
          for await (const event of node.calls({ backlog: KEEP, signal: stop.signal }))
            setCalls((list) => [event, ...list].slice(0, KEEP))
        } catch {
          // the node went away or refused: wait, then follow again
        }
        setLive(false)
        await new Promise((r) => setTimeout(r, 2000))
      }
    }
    void follow()
    return () => stop.abort()
  }, [])
  return { calls, live }
}

function Outcome({ event }: { event: CallEvent }) {
  if (event.outcome === 'ok') return <span class="badge ok">ok</span>
  // a failure a quorum certified is the function's, not the network's
  const certified = event.receipts.length > 0
  return (
    <span class={`badge ${certified ? 'warn' : 'bad'}`} title={certified ? 'certified failure' : 'no result'}>
      {event.outcome}
    </span>
  )
}

function Details({ event }: { event: CallEvent }) {
  return (
    <div class="details">
      <dl>
        <dt>request</dt>
        <dd class="mono">{event.request ?? '—'}</dd>
        <dt>function</dt>
        <dd class="mono">{event.fn ?? '—'}</dd>
        <dt>caller</dt>
        <dd class="mono">{event.caller ?? '—'}</dd>
        {event.from !== null && (
          <>
            <dt>asked by</dt>
            <dd class="mono">{event.from}</dd>
          </>
        )}
        <dt>output hash</dt>
        <dd class="mono">{event.outputHash ?? '—'}</dd>
      </dl>
      {event.receipts.length > 0 && (
        <>
          <h3>{event.role === 'gateway' ? 'Certificate: the receipts of the quorum' : 'Its receipt'}</h3>
          <Receipts receipts={event.receipts} />
        </>
      )}
      {event.conflicts.length > 0 && (
        <>
          <h3 class="bad-text">Conflicts: receipts that disagreed with the quorum</h3>
          <ul>
            {event.conflicts.map((c) => (
              <li key={c.executor} class="mono">
                {short(c.executor)} signed {c.outputHash.slice(0, 16)}…
              </li>
            ))}
          </ul>
        </>
      )}
      {event.tried.length > 0 && (
        <>
          <h3>Executors asked</h3>
          <ul class="tried">
            {event.tried.map((t) => (
              <li key={t.peer}>
                <span class="mono">{short(t.peer)}</span> {t.outcome}
                {t.error !== null && <span class="muted"> ({t.error})</span>} · {t.ms} ms
              </li>
            ))}
          </ul>
        </>
      )}
    </div>
  )
}

export function CallsPage() {
  const { calls, live } = useCalls()
  const [open, setOpen] = useState<number | undefined>()
  return (
    <section>
      <h1>
        Calls <span class={`live ${live ? 'on' : 'off'}`}>{live ? '● live' : '○ reconnecting'}</span>
      </h1>
      <p class="lede">
        Invocations this node ran the quorum protocol for (gateway) or executed, as they end. Who called which
        function, what it cost and who signed; never the arguments or the result, which are the caller’s.
      </p>
      {calls.length === 0 ? (
        <p class="empty">No calls yet. Make one from the Playground, or with `npx covenant call`.</p>
      ) : (
        <table class="calls">
          <thead>
            <tr>
              <th>time</th>
              <th>role</th>
              <th>function</th>
              <th>caller</th>
              <th>fuel</th>
              <th>ms</th>
              <th>outcome</th>
              <th>signed by</th>
            </tr>
          </thead>
          <tbody>
            {calls.map((e) => (
              <>
                <tr
                  key={e.seq}
                  class={`call ${open === e.seq ? 'open' : ''}`}
                  data-request={e.request ?? ''}
                  onClick={() => setOpen(open === e.seq ? undefined : e.seq)}
                >
                  <td>{clock(e.at)}</td>
                  <td>
                    <span class={`role ${e.role}`}>{e.role}</span>
                  </td>
                  <td class="mono" title={e.fn ?? ''}>
                    {short(e.fn)}
                    {e.export !== null && <b> .{e.export}</b>}
                  </td>
                  <td class="mono" title={e.caller ?? ''}>
                    {short(e.caller)}
                  </td>
                  <td>{e.fuel ?? '—'}</td>
                  <td>{e.ms}</td>
                  <td>
                    <Outcome event={e} />
                  </td>
                  <td>
                    {e.receipts.length > 0
                      ? `${e.receipts.length}${e.k !== null && e.role === 'gateway' ? ` of ${e.k}` : ''}`
                      : '—'}
                    {e.conflicts.length > 0 && <span class="badge bad"> {e.conflicts.length} conflict</span>}
                  </td>
                </tr>
                {open === e.seq && (
                  <tr class="detail-row" key={`${e.seq}-details`}>
                    <td colSpan={8}>
                      <Details event={e} />
                    </td>
                  </tr>
                )}
              </>
            ))}
          </tbody>
        </table>
      )}
    </section>
  )
}
