/**
 * The dashboard's pages, in the order the navigation shows them. A part adds its page here: a
 * module in `pages/` exporting a component that reads the part's routes through `node` (the SDK
 * client of this node), and one line below. `path` is its address (`#/<path>`); a page with
 * `nav: false` is reached by links only.
 */
import type { FunctionComponent } from 'preact'
import { CallsPage } from './pages/calls.tsx'
import { NetworkPage } from './pages/network.tsx'
import { PlaygroundPage } from './pages/playground.tsx'
import { StoragePage } from './pages/storage.tsx'
import { VerifyPage } from './pages/verify.tsx'

export interface Page {
  path: string
  title: string
  /** the rest of the address after `#/<path>/`, if any */
  component: FunctionComponent<{ rest: string }>
  nav: boolean
}

export const PAGES: Page[] = [
  { path: 'network', title: 'Network', component: NetworkPage, nav: true },
  { path: 'calls', title: 'Calls', component: CallsPage, nav: true },
  { path: 'storage', title: 'Storage', component: StoragePage, nav: true },
  { path: 'playground', title: 'Playground', component: PlaygroundPage, nav: true },
  { path: 'verify', title: 'Re-check a certificate', component: VerifyPage, nav: false },
]
