// @ts-check
/** `atob` and `btoa`: forgiving base64 over strings of bytes, as the HTML standard defines them. */
import { define, ErrorC, G, StringC, StringFromCharCode } from './intrinsics.js'

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'

/** @param {string} what */
const invalidChar = (what) => {
  const e = new ErrorC(what)
  e.name = 'InvalidCharacterError'
  return e
}

define(
  G,
  'btoa',
  /** @param {unknown} data */
  function btoa(data) {
    const s = StringC(data)
    let out = ''
    for (let i = 0; i < s.length; i += 3) {
      const a = s.charCodeAt(i)
      const b = s.charCodeAt(i + 1)
      const c = s.charCodeAt(i + 2)
      if (a > 255 || b > 255 || c > 255) throw invalidChar('Invalid character')
      const n = (a << 16) | ((b || 0) << 8) | (c || 0)
      out += B64[n >> 18] + B64[(n >> 12) & 63]
      out += i + 1 < s.length ? B64[(n >> 6) & 63] : '='
      out += i + 2 < s.length ? B64[n & 63] : '='
    }
    return out
  },
  true,
)

define(
  G,
  'atob',
  /** @param {unknown} data */
  function atob(data) {
    let s = StringC(data).replace(/[\t\n\f\r ]/g, '')
    if (s.length % 4 === 0) s = s.replace(/==?$/, '')
    if (s.length % 4 === 1 || /[^A-Za-z0-9+/]/.test(s))
      throw invalidChar('The string to be decoded is not correctly encoded.')
    let out = ''
    let bits = 0
    let acc = 0
    for (let i = 0; i < s.length; i++) {
      acc = (acc << 6) | B64.indexOf(s[i])
      bits += 6
      if (bits >= 8) {
        bits -= 8
        out += StringFromCharCode((acc >> bits) & 255)
      }
    }
    return out
  },
  true,
)
