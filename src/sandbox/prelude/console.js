// @ts-check
/**
 * Logging: `ctx.log` and `console.*` format their arguments into one line and hand it to the
 * host, which counts it against the call's log limit.
 */
import { define, ErrorC, G, HOST, JSONstringify, StringC } from './intrinsics.js'

const hostLog = HOST.log

/**
 * One value as a log shows it: strings as they are (quoted when nested), errors as
 * `Name: message`, everything else as JSON where it can be.
 * @param {unknown} v
 * @param {boolean} nested
 * @returns {string}
 */
const show = (v, nested) => {
  if (typeof v === 'string') return nested ? JSONstringify(v) : v
  if (v === undefined) return 'undefined'
  if (typeof v === 'function') return `[Function: ${v.name || 'anonymous'}]`
  if (typeof v === 'symbol' || typeof v === 'bigint') return StringC(v) + (typeof v === 'bigint' ? 'n' : '')
  if (v instanceof ErrorC) return `${v.name}: ${v.message}`
  try {
    const j = JSONstringify(v)
    return j === undefined ? StringC(v) : j
  } catch {
    try {
      return StringC(v)
    } catch {
      return '[unprintable]'
    }
  }
}

/** @param {unknown[]} args */
const format = (args) => {
  let line = ''
  for (let i = 0; i < args.length; i++) line += (i === 0 ? '' : ' ') + show(args[i], false)
  return line
}

/**
 * Appends one line to the call's logs: `ctx.log`, and every `console` method but `dir`.
 * @param {...unknown} args
 */
export const log = (...args) => {
  hostLog(format(args))
}

const consoleObj = {}
for (const level of ['log', 'info', 'debug', 'warn', 'error', 'trace']) define(consoleObj, level, log)
define(consoleObj, 'dir', (/** @type {unknown} */ v) => hostLog(show(v, true)))
define(consoleObj, 'table', log)
define(G, 'console', consoleObj)
