// core-js ships no types; these are the two entry points the prelude bundles, typed as far as it
// uses them (it only installs them as globals).
declare module 'core-js-pure/stable/url/index.js' {
  const URL: abstract new (url: string, base?: string) => object
  export default URL
}
declare module 'core-js-pure/stable/url-search-params/index.js' {
  const URLSearchParams: abstract new (init?: unknown) => object
  export default URLSearchParams
}
