/** What this node stores and why, the disk it uses against its covenant's limit, and its repair queue. */
import type { StorageReply } from '../../../client/index.ts'
import { ago, formatBytes, node, short, usePoll } from '../node.ts'

type Why = StorageReply['held'][number]['why']

function WhyCell({ why, k }: { why: Why; k: number }) {
  switch (why.role) {
    case 'holder':
      return (
        <span class="badge ok" title="one of the k closest live nodes whose covenant accepts it">
          holder {why.rank} of {k}
        </span>
      )
    case 'surplus':
      return (
        <span class="badge warn" title="k closer willing nodes exist; dropped once they confirm their copies">
          surplus (#{why.rank})
        </span>
      )
    case 'refused':
      return (
        <span
          class="badge bad"
          title="this node's covenant no longer accepts it; dropped once k holders confirm"
        >
          no longer accepted
        </span>
      )
    case 'pinned':
      return <span class="badge self">pinned</span>
  }
}

function percent(share: number): string {
  if (share > 0 && share < 0.0001) return 'under 0.01 %'
  return `${(share * 100).toFixed(share < 0.1 ? 2 : 1)} %`
}

export function StoragePage() {
  const { data, error } = usePoll(() => node.storage({ limit: 200 }), 3000)
  const share = data === undefined || data.maxBytes === 0 ? 0 : Math.min(1, data.usedBytes / data.maxBytes)
  return (
    <section>
      <h1>Storage</h1>
      <p class="lede">
        Blocks this node holds, and why: each block lives on the k live nodes closest to its CID whose
        covenant accepts it, and the repair loop moves copies when peers come, go or change their covenant.
      </p>
      {error && (
        <p class="error">
          Could not read storage: {error.code} {error.message}
        </p>
      )}
      {data !== undefined && (
        <>
          <div class="cards">
            <div class="card">
              <b>{data.blocks}</b> blocks
            </div>
            <div class="card">
              <b>{formatBytes(data.usedBytes)}</b> used
            </div>
            <div class="card">
              <b>{data.storeEnabled ? formatBytes(data.maxBytes) : 'none'}</b> allowed by its covenant
            </div>
            <div class="card">
              <b>{data.replicas}</b> holders per block (k)
            </div>
          </div>
          <div class="panel">
            <div class="usage" title={`${data.usedBytes} of ${data.maxBytes} bytes`}>
              <div
                class="usage-bar"
                style={{ width: `${Math.max(share * 100, data.usedBytes > 0 ? 0.5 : 0)}%` }}
              />
            </div>
            <p class="muted">
              {formatBytes(data.usedBytes)} of {formatBytes(data.maxBytes)} ({percent(share)})
            </p>
          </div>
          <h2>Repair</h2>
          <p>
            {data.repair.last === null ? (
              <span class="muted">No repair round yet (one runs every {data.repair.intervalMs} ms).</span>
            ) : (
              <>
                Last round {ago(data.repair.last.at)} ({data.repair.last.ms} ms): checked{' '}
                {data.repair.last.checked}, pushed {data.repair.last.pushed}, dropped{' '}
                {data.repair.last.dropped}. A round runs every {data.repair.intervalMs} ms and when peers
                change.
              </>
            )}
          </p>
          {data.repair.queue.length === 0 ? (
            <p class="empty">The repair queue is empty: every block held here has all its holders.</p>
          ) : (
            <table class="queue">
              <thead>
                <tr>
                  <th>block</th>
                  <th>holders missing a copy</th>
                  <th>next</th>
                </tr>
              </thead>
              <tbody>
                {data.repair.queue.map((q) => (
                  <tr key={q.cid}>
                    <td class="mono" title={q.cid}>
                      {short(q.cid, 8)}
                    </td>
                    <td class="mono">{q.missing.map((p) => short(p)).join(', ')}</td>
                    <td>{q.action === 'push' ? 'this node pushes it' : 'a closer holder pushes it'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          <h2>Blocks held</h2>
          {data.held.length === 0 ? (
            <p class="empty">This node holds no blocks yet.</p>
          ) : (
            <table class="blocks">
              <thead>
                <tr>
                  <th>block</th>
                  <th>size</th>
                  <th>tags</th>
                  <th>stored</th>
                  <th>why it is here</th>
                </tr>
              </thead>
              <tbody>
                {data.held.map((b) => (
                  <tr key={b.cid} data-cid={b.cid}>
                    <td class="mono" title={b.cid}>
                      {short(b.cid, 8)}
                      <span class="muted"> {b.cid.startsWith('bafyrei') ? 'manifest' : 'code/data'}</span>
                    </td>
                    <td>{formatBytes(b.size)}</td>
                    <td>{b.tags.length === 0 ? <span class="muted">—</span> : b.tags.join(', ')}</td>
                    <td>{ago(b.storedAt)}</td>
                    <td>
                      <WhyCell why={b.why} k={data.replicas} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
          {data.held.length < data.blocks && (
            <p class="muted">
              Showing the first {data.held.length} of {data.blocks} blocks (by CID).
            </p>
          )}
        </>
      )}
    </section>
  )
}
