/** The receipts of a certificate as a table, the same on every page that shows one. */
import type { ReceiptJSON } from '../../exec/index.ts'
import { short } from './node.ts'

/** One row per executor: who signed, the output hash, fuel, covenant version and signature. */
export function Receipts({ receipts, fullIds = false }: { receipts: ReceiptJSON[]; fullIds?: boolean }) {
  return (
    <table class="receipts" data-testid="receipts">
      <thead>
        <tr>
          <th>signed by</th>
          <th>output hash</th>
          <th>fuel</th>
          <th>covenant</th>
          <th>signature</th>
        </tr>
      </thead>
      <tbody>
        {receipts.map((r) => (
          <tr key={r.executor}>
            <td class="mono" title={r.executor}>
              {fullIds ? r.executor : short(r.executor)}
            </td>
            <td class="mono" title={r.outputHash}>
              {r.outputHash.slice(0, 16)}…
            </td>
            <td>{r.fuel}</td>
            <td>v{r.covenantVersion}</td>
            <td class="mono" title={r.signature}>
              {r.signature.slice(0, 12)}…
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  )
}
