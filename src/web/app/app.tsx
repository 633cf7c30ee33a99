/**
 * The dashboard: a header naming the node, the navigation, and the page the address names
 * (`#/network`, `#/calls`, …; see `pages.ts`). Hash addresses keep everything on one served page,
 * and keep a re-check link's certificate out of every request.
 */
import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import { node, short, usePoll } from './node.ts'
import { PAGES } from './pages.ts'

function currentRoute(): { path: string; rest: string } {
  const [path = '', ...rest] = location.hash.replace(/^#\/?/, '').split('/')
  return { path, rest: rest.join('/') }
}

function App() {
  const [route, setRoute] = useState(currentRoute)
  useEffect(() => {
    const onHash = () => setRoute(currentRoute())
    addEventListener('hashchange', onHash)
    return () => removeEventListener('hashchange', onHash)
  }, [])
  const info = usePoll(() => node.node(), 30_000)
  const page = PAGES.find((p) => p.path === route.path) ?? PAGES[0]
  const Page = page.component
  useEffect(() => {
    document.title = `${page.title} · Covenant node`
  }, [page])
  return (
    <>
      <header class="top">
        <a class="brand" href="#/network">
          <span class="mark">◆</span> Covenant
        </a>
        <nav>
          {PAGES.filter((p) => p.nav).map((p) => (
            <a key={p.path} href={`#/${p.path}`} class={p === page ? 'active' : undefined}>
              {p.title}
            </a>
          ))}
        </nav>
        <span class="self" title={info.data?.peerId}>
          node {short(info.data?.peerId)}
          {info.data !== undefined && <span class="muted"> · covenant v{info.data.covenant.version}</span>}
        </span>
      </header>
      <main>
        <Page rest={route.rest} />
      </main>
      <footer>
        Served by the node at {location.host}. Everything here is read from its HTTP API and checked in this
        browser.
      </footer>
    </>
  )
}

render(<App />, document.getElementById('app')!)
