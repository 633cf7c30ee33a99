// The sandbox prelude: plain JavaScript evaluated inside each fresh QuickJS context before the
// function's bundle. It makes the context deterministic (seeded Math.random, Date pinned to the
// request time, no GC-observable WeakRef/FinalizationRegistry), adds the standard globals npm
// packages expect, and returns the private driver the host uses to call an export. Everything the
// driver relies on is captured here, before user code runs, so user code that overwrites
// JSON.stringify, Promise.prototype.then or Object.prototype.toJSON cannot change what the host
// reads except through JSON semantics the function itself controls.
//
// It is a script (not a module) whose completion value is the driver object; the host passes its
// own functions in `globalThis.__covenantHost`, which the prelude removes at once.
;(() => {
  const G = globalThis
  const host = G.__covenantHost
  delete G.__covenantHost
  const hostLog = host.log

  const ReflectApply = Reflect.apply
  const ReflectConstruct = Reflect.construct
  const ObjectFreeze = Object.freeze
  const ObjectDefineProperty = Object.defineProperty
  const ObjectKeys = Object.keys
  const ObjectGetPrototypeOf = Object.getPrototypeOf
  const JSONstringify = JSON.stringify
  const JSONparse = JSON.parse
  const StringC = String
  const StringFromCharCode = String.fromCharCode
  const ErrorC = Error
  const TypeErrorC = TypeError
  const InternalErrorC = G.InternalError
  const OrigDate = G.Date
  const OrigPromise = Promise
  const promiseThen = Promise.prototype.then
  const promiseResolve = Promise.resolve
  const ArrayIsArray = Array.isArray
  const MathMin = Math.min
  const ArrayPush = Array.prototype.push
  const MapC = Map
  const SetC = Set
  const MapGet = Map.prototype.get
  const MapSet = Map.prototype.set
  const MapHas = Map.prototype.has
  const RegExpC = RegExp
  const ArrayBufferC = ArrayBuffer
  const Uint8ArrayC = Uint8Array
  const ArrayBufferIsView = ArrayBuffer.isView
  const encodeURIComponentF = encodeURIComponent
  const decodeURIComponentF = decodeURIComponent

  const define = (obj, name, value) =>
    ObjectDefineProperty(obj, name, { value, writable: true, configurable: true, enumerable: false })

  // GC timing differs between runs; anything that lets code observe it breaks determinism.
  delete G.WeakRef
  delete G.FinalizationRegistry

  // ---- deterministic time and randomness ----------------------------------------------------
  let NOW = 0
  let s0 = 0
  let s1 = 0
  let s2 = 0
  let s3 = 1
  // sfc32: small, fast, well distributed, and fully specified, so every executor gets the same stream
  const next32 = () => {
    const t = (((s0 + s1) | 0) + s3) | 0
    s3 = (s3 + 1) | 0
    s0 = s1 ^ (s1 >>> 9)
    s1 = (s2 + (s2 << 3)) | 0
    s2 = (s2 << 21) | (s2 >>> 11)
    s2 = (s2 + t) | 0
    return t >>> 0
  }
  const random = () => next32() / 4294967296
  define(Math, 'random', function random() {
    return next32() / 4294967296
  })

  // not a `function Date` declaration: that would shadow (and hoist over) the original above
  const PinnedDate = function (...args) {
    if (new.target === undefined) return ReflectApply(OrigDate.prototype.toString, new OrigDate(NOW), [])
    return ReflectConstruct(OrigDate, args.length === 0 ? [NOW] : args, new.target)
  }
  ObjectDefineProperty(PinnedDate, 'prototype', { value: OrigDate.prototype, writable: false })
  ObjectDefineProperty(PinnedDate, 'length', { value: 7 })
  ObjectDefineProperty(PinnedDate, 'name', { value: 'Date' })
  define(OrigDate.prototype, 'constructor', PinnedDate)
  define(PinnedDate, 'now', function now() {
    return NOW
  })
  define(PinnedDate, 'UTC', OrigDate.UTC)
  define(PinnedDate, 'parse', OrigDate.parse)
  define(G, 'Date', PinnedDate)

  // ---- logging ----------------------------------------------------------------------------------
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
  const format = (args) => {
    let line = ''
    for (let i = 0; i < args.length; i++) line += (i === 0 ? '' : ' ') + show(args[i], false)
    return line
  }
  const log = (...args) => {
    hostLog(format(args))
  }
  const consoleObj = {}
  for (const level of ['log', 'info', 'debug', 'warn', 'error', 'trace']) define(consoleObj, level, log)
  define(consoleObj, 'dir', (v) => hostLog(show(v, true)))
  define(consoleObj, 'table', log)
  define(G, 'console', consoleObj)

  // ---- TextEncoder / TextDecoder (UTF-8) -------------------------------------------------------
  const utf8Encode = (str) => {
    const s = StringC(str)
    const out = []
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i)
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
        const d = s.charCodeAt(i + 1)
        if (d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00)
          i++
        } else c = 0xfffd
      } else if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd
      if (c < 0x80) out.push(c)
      else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63))
      else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63))
      else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63))
    }
    return new Uint8ArrayC(out)
  }
  const toBytes = (input) => {
    if (input === undefined) return new Uint8ArrayC(0)
    if (input instanceof ArrayBufferC) return new Uint8ArrayC(input)
    if (ArrayBufferIsView(input)) return new Uint8ArrayC(input.buffer, input.byteOffset, input.byteLength)
    throw new TypeErrorC('The "input" argument must be an ArrayBuffer or ArrayBufferView')
  }
  const utf8Decode = (bytes, fatal) => {
    let out = ''
    let chunk = []
    const emit = (c) => {
      if (c > 0xffff) {
        c -= 0x10000
        chunk.push(0xd800 + (c >> 10), 0xdc00 + (c & 1023))
      } else chunk.push(c)
      if (chunk.length > 4096) {
        out += ReflectApply(StringFromCharCode, undefined, chunk)
        chunk = []
      }
    }
    const bad = () => {
      if (fatal) throw new TypeErrorC('The encoded data was not valid for encoding utf-8')
      emit(0xfffd)
    }
    for (let i = 0; i < bytes.length; ) {
      const b = bytes[i]
      let need = 0
      let c = 0
      let min = 0
      if (b < 0x80) {
        emit(b)
        i++
        continue
      } else if (b >= 0xc2 && b <= 0xdf) {
        need = 1
        c = b & 31
        min = 0x80
      } else if (b >= 0xe0 && b <= 0xef) {
        need = 2
        c = b & 15
        min = 0x800
      } else if (b >= 0xf0 && b <= 0xf4) {
        need = 3
        c = b & 7
        min = 0x10000
      } else {
        bad()
        i++
        continue
      }
      let j = 1
      for (; j <= need; j++) {
        const n = bytes[i + j]
        if (n === undefined || (n & 0xc0) !== 0x80) break
        c = (c << 6) | (n & 63)
      }
      if (j <= need || c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) {
        bad()
        i += j === 1 ? 1 : j
        continue
      }
      emit(c)
      i += need + 1
    }
    return out + ReflectApply(StringFromCharCode, undefined, chunk)
  }
  class TextEncoder {
    get encoding() {
      return 'utf-8'
    }
    encode(input = '') {
      return utf8Encode(input)
    }
    encodeInto(input, dest) {
      const bytes = utf8Encode(input)
      const n = MathMin(bytes.length, dest.length)
      // never split a character: back off to the last whole sequence
      let end = n
      if (end < bytes.length) while (end > 0 && (bytes[end] & 0xc0) === 0x80) end--
      dest.set(bytes.subarray(0, end))
      return { read: utf8Decode(bytes.subarray(0, end), false).length, written: end }
    }
  }
  class TextDecoder {
    #fatal
    #ignoreBOM
    constructor(label = 'utf-8', options = {}) {
      const l = StringC(label).trim().toLowerCase()
      if (l !== 'utf-8' && l !== 'utf8' && l !== 'unicode-1-1-utf-8') {
        throw new RangeError(`The "${label}" encoding is not supported`)
      }
      this.#fatal = Boolean(options.fatal)
      this.#ignoreBOM = Boolean(options.ignoreBOM)
    }
    get encoding() {
      return 'utf-8'
    }
    get fatal() {
      return this.#fatal
    }
    get ignoreBOM() {
      return this.#ignoreBOM
    }
    decode(input) {
      let bytes = toBytes(input)
      if (!this.#ignoreBOM && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf)
        bytes = bytes.subarray(3)
      return utf8Decode(bytes, this.#fatal)
    }
  }
  define(G, 'TextEncoder', TextEncoder)
  define(G, 'TextDecoder', TextDecoder)

  // ---- atob / btoa ----------------------------------------------------------------------------
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  const invalidChar = (what) => {
    const e = new ErrorC(what)
    e.name = 'InvalidCharacterError'
    return e
  }
  define(G, 'btoa', function btoa(data) {
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
  })
  define(G, 'atob', function atob(data) {
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
  })

  // ---- URL / URLSearchParams (WHATWG-style, ASCII hosts) -----------------------------------------
  const formEncode = (s) =>
    encodeURIComponentF(StringC(s))
      .replace(/%20/g, '+')
      .replace(/[!'()~]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
  const percentDecode = (s) => {
    try {
      return decodeURIComponentF(s)
    } catch {
      return s.replace(/%[0-9a-fA-F]{2}/g, (m) => {
        try {
          return decodeURIComponentF(m)
        } catch {
          return m
        }
      })
    }
  }
  const formDecode = (s) => percentDecode(s.replace(/\+/g, ' '))
  const kUpdate = Symbol('update')
  class URLSearchParams {
    #list = []
    #url = null
    constructor(init = '') {
      if (typeof init === 'object' && init !== null) {
        if (typeof init[Symbol.iterator] === 'function') {
          for (const pair of init) {
            const p = [...pair]
            if (p.length !== 2)
              throw new TypeErrorC('Each query pair must be an iterable [name, value] tuple')
            this.#list.push([StringC(p[0]), StringC(p[1])])
          }
        } else for (const k of ObjectKeys(init)) this.#list.push([k, StringC(init[k])])
      } else this.#parse(StringC(init))
    }
    #parse(s) {
      this.#list = []
      if (s.startsWith('?')) s = s.slice(1)
      for (const part of s.split('&')) {
        if (part === '') continue
        const eq = part.indexOf('=')
        this.#list.push(
          eq < 0 ? [formDecode(part), ''] : [formDecode(part.slice(0, eq)), formDecode(part.slice(eq + 1))],
        )
      }
    }
    static [kUpdate](params, url, query) {
      params.#url = url
      if (query !== undefined) params.#parse(query)
    }
    #changed() {
      if (this.#url !== null) this.#url[kUpdate](this.toString())
    }
    get size() {
      return this.#list.length
    }
    append(name, value) {
      this.#list.push([StringC(name), StringC(value)])
      this.#changed()
    }
    delete(name, value) {
      const n = StringC(name)
      this.#list = this.#list.filter(([k, v]) => !(k === n && (value === undefined || v === StringC(value))))
      this.#changed()
    }
    get(name) {
      const n = StringC(name)
      const hit = this.#list.find(([k]) => k === n)
      return hit === undefined ? null : hit[1]
    }
    getAll(name) {
      const n = StringC(name)
      return this.#list.filter(([k]) => k === n).map(([, v]) => v)
    }
    has(name, value) {
      const n = StringC(name)
      return this.#list.some(([k, v]) => k === n && (value === undefined || v === StringC(value)))
    }
    set(name, value) {
      const n = StringC(name)
      const i = this.#list.findIndex(([k]) => k === n)
      if (i < 0) this.#list.push([n, StringC(value)])
      else {
        this.#list[i][1] = StringC(value)
        this.#list = this.#list.filter(([k], j) => j <= i || k !== n)
      }
      this.#changed()
    }
    sort() {
      // stable sort by UTF-16 code units, as the standard says
      this.#list = this.#list
        .map((p, i) => [p, i])
        .sort((a, b) => (a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : a[1] - b[1]))
        .map(([p]) => p)
      this.#changed()
    }
    forEach(fn, thisArg) {
      for (const [k, v] of this.#list) ReflectApply(fn, thisArg, [v, k, this])
    }
    *entries() {
      for (const [k, v] of this.#list) yield [k, v]
    }
    *keys() {
      for (const [k] of this.#list) yield k
    }
    *values() {
      for (const [, v] of this.#list) yield v
    }
    [Symbol.iterator]() {
      return this.entries()
    }
    toString() {
      return this.#list.map(([k, v]) => `${formEncode(k)}=${formEncode(v)}`).join('&')
    }
  }
  const SPECIAL = { 'http:': '80', 'https:': '443', 'ws:': '80', 'wss:': '443', 'ftp:': '21', 'file:': '' }
  const isSpecial = (p) => Object.hasOwn(SPECIAL, p)
  const encodeSet = (s, re) =>
    s.replace(re, (c) => {
      const bytes = utf8Encode(c)
      let out = ''
      for (let i = 0; i < bytes.length; i++)
        out += `%${(bytes[i] < 16 ? '0' : '') + bytes[i].toString(16).toUpperCase()}`
      return out
    })
  const PATH_SET = /[\u0000-\u0020"#<>?`{}\u007f-\uffff]/gu
  const QUERY_SET = /[\u0000-\u0020"#<>\u007f-\uffff]/gu
  const SPECIAL_QUERY_SET = /[\u0000-\u0020"#'<>\u007f-\uffff]/gu
  const FRAGMENT_SET = /[\u0000-\u0020"<>`\u007f-\uffff]/gu
  const USERINFO_SET = /[\u0000-\u0020"#<>?`{}/:;=@[\\\]^|\u007f-\uffff]/gu
  const invalidURL = (input) => new TypeErrorC(`Invalid URL: ${input}`)
  const normalizePath = (segments, special) => {
    const out = []
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i]
      const lower = seg.toLowerCase()
      const last = i === segments.length - 1
      if (seg === '..' || lower === '.%2e' || lower === '%2e.' || lower === '%2e%2e') {
        if (out.length > 0) out.pop()
        if (last) out.push('')
      } else if (seg === '.' || lower === '%2e') {
        if (last) out.push('')
      } else out.push(encodeSet(seg, special ? PATH_SET : PATH_SET))
    }
    return out
  }
  const parseHost = (raw, special, input) => {
    if (raw.startsWith('[')) {
      if (!/^\[[0-9a-fA-F:.]+\]$/.test(raw)) throw invalidURL(input)
      return raw.toLowerCase()
    }
    const host = percentDecode(raw)
    if (special) {
      if (host === '' || /[\u0000-\u0020#%/:<>?@[\\\]^|\u007f]/.test(host)) throw invalidURL(input)
      // non-ASCII hosts would need IDNA (punycode), which this prelude does not carry
      if (/[^\u0000-\u007f]/.test(host)) throw invalidURL(input)
      return host.toLowerCase()
    }
    return encodeSet(raw, /[\u0000-\u001f\u007f-\uffff]/gu)
  }
  const parseURL = (input, base) => {
    const s = StringC(input)
      .replace(/^[\u0000-\u0020]+|[\u0000-\u0020]+$/g, '')
      .replace(/[\t\n\r]/g, '')
    const r = {
      protocol: '',
      username: '',
      password: '',
      hostname: '',
      port: '',
      path: [],
      opaque: null,
      query: null,
      fragment: null,
    }
    let rest = s
    const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(s)
    if (m !== null) {
      r.protocol = `${m[1].toLowerCase()}:`
      rest = s.slice(m[0].length)
      if (base && isSpecial(r.protocol) && base.protocol === r.protocol && !/^[/\\]/.test(rest)) {
        return resolveRelative(rest, base, r, input)
      }
    } else {
      if (base === undefined) throw invalidURL(input)
      r.protocol = base.protocol
      return resolveRelative(rest, base, r, input)
    }
    return parseAfterScheme(rest, r, input)
  }
  const splitTail = (rest, r) => {
    const hash = rest.indexOf('#')
    if (hash >= 0) {
      r.fragment = encodeSet(rest.slice(hash + 1), FRAGMENT_SET)
      rest = rest.slice(0, hash)
    }
    const q = rest.indexOf('?')
    if (q >= 0) {
      r.query = encodeSet(rest.slice(q + 1), isSpecial(r.protocol) ? SPECIAL_QUERY_SET : QUERY_SET)
      rest = rest.slice(0, q)
    }
    return rest
  }
  const parseAfterScheme = (rest, r, input) => {
    const special = isSpecial(r.protocol)
    const slashes = special ? /^[/\\]*/ : /^\/\//
    const sm = slashes.exec(rest)
    if (special || sm !== null) {
      rest = rest.slice(sm === null ? 0 : sm[0].length)
      rest = splitTail(rest, r)
      const end = special ? rest.search(/[/\\]/) : rest.indexOf('/')
      let authority = end < 0 ? rest : rest.slice(0, end)
      const path = end < 0 ? '' : rest.slice(end)
      const at = authority.lastIndexOf('@')
      if (at >= 0) {
        const info = authority.slice(0, at)
        authority = authority.slice(at + 1)
        const colon = info.indexOf(':')
        r.username = encodeSet(colon < 0 ? info : info.slice(0, colon), USERINFO_SET)
        r.password = colon < 0 ? '' : encodeSet(info.slice(colon + 1), USERINFO_SET)
      }
      const pm = /:(\d*)$/.exec(authority)
      if (pm !== null && !authority.endsWith(']')) {
        authority = authority.slice(0, pm.index)
        if (pm[1] !== '') {
          const n = Number(pm[1])
          if (n > 65535) throw invalidURL(input)
          r.port = SPECIAL[r.protocol] === StringC(n) ? '' : StringC(n)
        }
      } else if (/:[^\]]*$/.test(authority) && !authority.startsWith('[')) throw invalidURL(input)
      if (r.protocol === 'file:') r.hostname = authority === '' ? '' : parseHost(authority, true, input)
      else r.hostname = parseHost(authority, special, input)
      const segs = path.split(special ? /[/\\]/ : '/').slice(1)
      r.path = normalizePath(special && segs.length === 0 ? [''] : segs, special)
      return r
    }
    rest = splitTail(rest, r)
    if (rest.startsWith('/')) r.path = normalizePath(rest.split('/').slice(1), false)
    else r.opaque = encodeSet(rest, /[\u0000-\u001f\u007f-\uffff]/gu)
    return r
  }
  const resolveRelative = (rest, base, r, input) => {
    if (base.opaque !== null) {
      if (!rest.startsWith('#')) throw invalidURL(input)
      return { ...base, path: [...base.path], fragment: encodeSet(rest.slice(1), FRAGMENT_SET) }
    }
    const special = isSpecial(r.protocol)
    if ((special ? /^[/\\]{2}/ : /^\/\//).test(rest)) return parseAfterScheme(rest, r, input)
    const out = { ...base, path: [...base.path], query: base.query, fragment: null }
    if (rest === '') return out
    if (rest.startsWith('#')) {
      out.fragment = encodeSet(rest.slice(1), FRAGMENT_SET)
      return out
    }
    out.query = null
    const tail = splitTail(rest, out)
    if (tail === '') {
      if (!rest.startsWith('?')) out.query = base.query
      return out
    }
    if (/^[/\\]/.test(tail) && (special || tail.startsWith('/'))) {
      out.path = normalizePath(tail.split(special ? /[/\\]/ : '/').slice(1), special)
    } else {
      const dir = base.path.slice(0, -1)
      out.path = normalizePath([...dir, ...tail.split(special ? /[/\\]/ : '/')], special)
    }
    return out
  }
  class URL {
    #r
    #params
    constructor(url, base) {
      const b = base === undefined ? undefined : base instanceof URL ? base.#r : parseURL(base, undefined)
      this.#r = parseURL(url, b)
      this.#params = new URLSearchParams()
      URLSearchParams[kUpdate](this.#params, this, this.#r.query ?? '')
    }
    static canParse(url, base) {
      try {
        new URL(url, base)
        return true
      } catch {
        return false
      }
    }
    static parse(url, base) {
      try {
        return new URL(url, base)
      } catch {
        return null
      }
    }
    [kUpdate](query) {
      this.#r.query = query === '' ? null : query
    }
    get href() {
      const r = this.#r
      let out = r.protocol
      const hasAuthority = r.opaque === null && (r.hostname !== '' || isSpecial(r.protocol))
      if (hasAuthority) {
        out += '//'
        if (r.username !== '' || r.password !== '')
          out += r.username + (r.password !== '' ? `:${r.password}` : '') + '@'
        out += r.hostname + (r.port !== '' ? `:${r.port}` : '')
      }
      out += this.pathname
      if (r.query !== null) out += `?${r.query}`
      if (r.fragment !== null) out += `#${r.fragment}`
      return out
    }
    set href(v) {
      this.#r = parseURL(v, undefined)
      URLSearchParams[kUpdate](this.#params, this, this.#r.query ?? '')
    }
    get origin() {
      const p = this.#r.protocol
      return isSpecial(p) && p !== 'file:' ? `${p}//${this.host}` : 'null'
    }
    get protocol() {
      return this.#r.protocol
    }
    set protocol(v) {
      const p = `${StringC(v).replace(/:.*$/, '').toLowerCase()}:`
      if (/^[a-z][a-z0-9+.-]*:$/.test(p) && isSpecial(p) === isSpecial(this.#r.protocol)) {
        this.#r.protocol = p
        if (SPECIAL[p] === this.#r.port) this.#r.port = ''
      }
    }
    get username() {
      return this.#r.username
    }
    set username(v) {
      this.#r.username = encodeSet(StringC(v), USERINFO_SET)
    }
    get password() {
      return this.#r.password
    }
    set password(v) {
      this.#r.password = encodeSet(StringC(v), USERINFO_SET)
    }
    get host() {
      return this.#r.hostname + (this.#r.port !== '' ? `:${this.#r.port}` : '')
    }
    set host(v) {
      const m = /^([^:/?#]*)(?::(\d*))?/.exec(StringC(v))
      if (m[1] !== '') this.#r.hostname = parseHost(m[1], isSpecial(this.#r.protocol), v)
      if (m[2] !== undefined) this.port = m[2]
    }
    get hostname() {
      return this.#r.hostname
    }
    set hostname(v) {
      this.#r.hostname = parseHost(StringC(v), isSpecial(this.#r.protocol), v)
    }
    get port() {
      return this.#r.port
    }
    set port(v) {
      const m = /^\d*/.exec(StringC(v))[0]
      if (m === '') {
        if (StringC(v) === '') this.#r.port = ''
        return
      }
      const n = Number(m)
      if (n <= 65535) this.#r.port = SPECIAL[this.#r.protocol] === StringC(n) ? '' : StringC(n)
    }
    get pathname() {
      const r = this.#r
      return r.opaque !== null ? r.opaque : r.path.length === 0 ? '' : `/${r.path.join('/')}`
    }
    set pathname(v) {
      if (this.#r.opaque !== null) return
      const special = isSpecial(this.#r.protocol)
      const s = StringC(v)
      this.#r.path = normalizePath(
        (/^[/\\]/.test(s) ? s : `/${s}`).split(special ? /[/\\]/ : '/').slice(1),
        special,
      )
    }
    get search() {
      const q = this.#r.query
      return q === null || q === '' ? '' : `?${q}`
    }
    set search(v) {
      let s = StringC(v)
      if (s.startsWith('?')) s = s.slice(1)
      this.#r.query =
        s === '' ? null : encodeSet(s, isSpecial(this.#r.protocol) ? SPECIAL_QUERY_SET : QUERY_SET)
      URLSearchParams[kUpdate](this.#params, this, s)
    }
    get searchParams() {
      return this.#params
    }
    get hash() {
      const f = this.#r.fragment
      return f === null || f === '' ? '' : `#${f}`
    }
    set hash(v) {
      let s = StringC(v)
      if (s.startsWith('#')) s = s.slice(1)
      this.#r.fragment = s === '' ? null : encodeSet(s, FRAGMENT_SET)
    }
    toString() {
      return this.href
    }
    toJSON() {
      return this.href
    }
  }
  define(G, 'URL', URL)
  define(G, 'URLSearchParams', URLSearchParams)

  // ---- structuredClone ---------------------------------------------------------------------------
  const cloneError = (what) => {
    const e = new ErrorC(`${what} could not be cloned`)
    e.name = 'DataCloneError'
    return e
  }
  const clone = (v, seen) => {
    if (typeof v !== 'object' || v === null) {
      if (typeof v === 'function' || typeof v === 'symbol') throw cloneError(StringC(typeof v))
      return v
    }
    if (ReflectApply(MapHas, seen, [v])) return ReflectApply(MapGet, seen, [v])
    let out
    if (v instanceof OrigDate) out = new OrigDate(v.getTime())
    else if (v instanceof RegExpC) out = new RegExpC(v.source, v.flags)
    else if (v instanceof ArrayBufferC) out = v.slice(0)
    else if (ArrayBufferIsView(v)) {
      const buf = clone(v.buffer, seen)
      out = new (ObjectGetPrototypeOf(v).constructor)(
        buf,
        v.byteOffset,
        v instanceof DataView ? v.byteLength : v.length,
      )
    } else if (v instanceof MapC) {
      out = new MapC()
      ReflectApply(MapSet, seen, [v, out])
      for (const [k, x] of v) out.set(clone(k, seen), clone(x, seen))
      return out
    } else if (v instanceof SetC) {
      out = new SetC()
      ReflectApply(MapSet, seen, [v, out])
      for (const x of v) out.add(clone(x, seen))
      return out
    } else if (v instanceof ErrorC) {
      out = new ErrorC(v.message)
      out.name = v.name
    } else if (ArrayIsArray(v)) {
      out = new Array(v.length)
      ReflectApply(MapSet, seen, [v, out])
      for (const k of ObjectKeys(v)) out[k] = clone(v[k], seen)
      return out
    } else if (v instanceof OrigPromise || v instanceof WeakMap || v instanceof WeakSet) {
      throw cloneError(ObjectGetPrototypeOf(v).constructor.name)
    } else {
      out = {}
      ReflectApply(MapSet, seen, [v, out])
      for (const k of ObjectKeys(v)) out[k] = clone(v[k], seen)
      return out
    }
    ReflectApply(MapSet, seen, [v, out])
    return out
  }
  define(G, 'structuredClone', function structuredClone(value) {
    return clone(value, new MapC())
  })

  // ---- queueMicrotask, crypto --------------------------------------------------------------------
  define(G, 'queueMicrotask', function queueMicrotask(fn) {
    if (typeof fn !== 'function') throw new TypeErrorC('The "callback" argument must be of type function')
    ReflectApply(promiseThen, ReflectApply(promiseResolve, OrigPromise, []), [() => fn()])
  })
  // Deterministic, therefore NOT secret: every executor of a request produces the same bytes.
  // Offered so id-generating packages work; docs/functions.md says never to use it for secrets.
  const cryptoObj = {}
  define(cryptoObj, 'getRandomValues', function getRandomValues(arr) {
    if (!ArrayBufferIsView(arr) || arr instanceof DataView)
      throw new TypeErrorC('expected an integer TypedArray')
    const bytes = new Uint8ArrayC(arr.buffer, arr.byteOffset, arr.byteLength)
    if (bytes.length > 65536) throw new ErrorC('QuotaExceededError: at most 65536 bytes')
    for (let i = 0; i < bytes.length; i++) bytes[i] = next32() & 255
    return arr
  })
  define(cryptoObj, 'randomUUID', function randomUUID() {
    const b = new Uint8ArrayC(16)
    for (let i = 0; i < 16; i++) b[i] = next32() & 255
    b[6] = (b[6] & 0x0f) | 0x40
    b[8] = (b[8] & 0x3f) | 0x80
    let h = ''
    for (let i = 0; i < 16; i++)
      h += (b[i] < 16 ? '0' : '') + b[i].toString(16) + ([3, 5, 7, 9].includes(i) ? '-' : '')
    return h
  })
  define(G, 'crypto', cryptoObj)

  // ---- the driver ----------------------------------------------------------------------------------
  // state: 0 not called, 1 waiting for a promise, 2 returned, 3 threw
  let state = 0
  let outcome
  let ctxObj = null
  const describe = (e) => {
    try {
      if (e instanceof ErrorC) {
        const msg = StringC(e.message)
        const name = StringC(e.name)
        return (name === 'Error' || name === '' ? msg : `${name}: ${msg}`).slice(0, 4096)
      }
      return StringC(e).slice(0, 4096)
    } catch {
      return 'the function threw a value that cannot be shown'
    }
  }
  const internalKind = (e) => {
    if (InternalErrorC !== undefined && e instanceof InternalErrorC) {
      if (e.message === 'out of memory') return 'm'
      if (e.message === 'stack overflow') return 's'
    }
    // QuickJS's JSON parser and regexp compiler report their own depth limit as a SyntaxError
    if (e instanceof SyntaxError && e.message === 'stack overflow') return 's'
    return ''
  }
  const settle = (r) => {
    if ((typeof r === 'object' || typeof r === 'function') && r !== null && typeof r.then === 'function') {
      state = 1
      ReflectApply(promiseThen, ReflectApply(promiseResolve, OrigPromise, [r]), [
        (v) => {
          state = 2
          outcome = v
        },
        (e) => {
          state = 3
          outcome = e
        },
      ])
    } else {
      state = 2
      outcome = r
    }
  }
  return ObjectFreeze({
    setup(a, b, c, d, now, requestJson) {
      s0 = a | 0
      s1 = b | 0
      s2 = c | 0
      s3 = d | 0
      for (let i = 0; i < 12; i++) next32()
      NOW = now
      const request = ObjectFreeze(JSONparse(requestJson))
      ctxObj = ObjectFreeze({ log, random, now, request })
    },
    // a module namespace's `then` export would make the namespace a thenable; read it directly
    call(ns, name, argsJson) {
      const fn = ns[name]
      if (typeof fn !== 'function') return 'n'
      const args = JSONparse(argsJson)
      ReflectApply(ArrayPush, args, [ctxObj])
      try {
        settle(ReflectApply(fn, undefined, args))
      } catch (e) {
        state = 3
        outcome = e
      }
      return ''
    },
    pending() {
      return state === 1
    },
    // One letter says what happened, then the payload: v<json> value, e<message> threw,
    // m out of memory, s stack overflow, o output too large, p never settled.
    finish(outputLimit) {
      if (state === 1) return 'p'
      if (state === 3) return internalKind(outcome) || `e${describe(outcome)}`
      let json
      try {
        json = JSONstringify(outcome)
      } catch (e) {
        return internalKind(e) || `ethe result is not JSON-serialisable: ${describe(e)}`
      }
      if (json === undefined) json = 'null'
      if (json.length > outputLimit) return 'o'
      return `v${json}`
    },
    describeLoadError(e) {
      return internalKind(e) || `e${describe(e)}`
    },
  })
})()
