// @ts-check
/**
 * `URL` and `URLSearchParams`, from core-js (bundled at build time, its "pure" flavour, which
 * changes no built-in): the WHATWG URL parser with IPv4/IPv6 hosts and punycode for non-ASCII
 * hosts. core-js keeps a registry in `globalThis['__core-js_shared__']`; the bundled code holds
 * its own reference, so the global is removed (a bundle with its own core-js then starts afresh).
 */
import URL from 'core-js-pure/stable/url/index.js'
import URLSearchParams from 'core-js-pure/stable/url-search-params/index.js'
import { define, G } from './intrinsics.js'

define(G, 'URL', URL)
define(G, 'URLSearchParams', URLSearchParams)
delete G['__core-js_shared__']
