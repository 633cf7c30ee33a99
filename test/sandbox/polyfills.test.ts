/**
 * The prelude's standard globals against Node's own: each table's cases run through the same
 * function source in the sandbox and in this process, and the two must give the same JSON. A
 * thrown error is compared by its name (the wording of messages differs between implementations).
 * Where the sandbox knowingly differs, the case is left out here and the difference is written in
 * docs/functions.md.
 */
import assert from 'node:assert/strict'
import { after, describe, it } from 'node:test'
import { createSandbox } from '../../src/sandbox/index.ts'

const sandbox = createSandbox({ workers: 1 })
after(() => sandbox.stop())

/** Runs `run` on each input in order, awaiting each, and records its value or its error's name. */
const HARNESS = `async (run, inputs) => {
  const out = []
  for (const input of inputs) {
    try {
      out.push({ value: await run(input) })
    } catch (e) {
      out.push({ threw: e === null || typeof e !== 'object' ? typeof e : String(e.name) })
    }
  }
  return out
}`

interface Table {
  name: string
  /** the source of a function from one input to a JSON value (or a promise of one) */
  run: string
  inputs: unknown[]
}

async function inNode(table: Table): Promise<unknown[]> {
  const go = new Function('inputs', `return (${HARNESS})((${table.run}), inputs)`) as (
    inputs: unknown[],
  ) => Promise<unknown[]>
  return JSON.parse(JSON.stringify(await go(table.inputs)))
}

async function inSandbox(table: Table): Promise<unknown[]> {
  const result = await sandbox.run({
    code: `export function f(inputs) { return (${HARNESS})((${table.run}), inputs) }`,
    exportName: 'f',
    args: [table.inputs],
    seed: 'polyfills',
    now: Date.UTC(2025, 0, 1),
    // decided by the polyfills alone: no limit the tables could reach
    limits: { fuel: 1_000_000_000, timeoutMs: 120_000, outputBytes: 16 * 1024 * 1024 },
  })
  assert.ok(result.ok, JSON.stringify(result))
  return result.value as unknown[]
}

function agree(table: Table): void {
  it(`${table.name}: ${table.inputs.length} cases`, async () => {
    const [node, sandboxed] = [await inNode(table), await inSandbox(table)]
    assert.equal(sandboxed.length, table.inputs.length)
    for (let i = 0; i < table.inputs.length; i++)
      assert.deepEqual(sandboxed[i], node[i], `${table.name} on ${JSON.stringify(table.inputs[i])}`)
  })
}

const URL_PARTS = `(u) => [u.href, u.origin, u.protocol, u.username, u.password, u.host, u.hostname, u.port,
  u.pathname, u.search, u.hash, [...u.searchParams], u.toString(), u.toJSON(), JSON.stringify({ u })]`

describe('polyfills agree with Node', () => {
  agree({
    name: 'URL parsing',
    run: `([input, base]) => {
      const parts = ${URL_PARTS}
      return [parts(base === undefined ? new URL(input) : new URL(input, base)), URL.canParse(input, base),
        URL.parse(input, base) === null]
    }`,
    inputs: [
      ['https://example.com'],
      ['HTTPS://EXAMPLE.COM:443/'],
      ['http://example.com:80/a'],
      ['http://example.com:8080/a?b#c'],
      ['https://User:pw@Example.COM:443/a/b/c'],
      ['../x/./y?q=a b&r=1#frag', 'https://User:pw@Example.COM:443/a/b/c'],
      ['//other.org/p', 'https://example.com/a'],
      ['/abs', 'https://example.com/a/b'],
      ['?q', 'https://example.com/a/b?x#y'],
      ['#h', 'https://example.com/a/b?x#y'],
      ['', 'https://example.com/a/b?x#y'],
      ['rel', 'https://example.com/a/b/'],
      ['..', 'https://example.com/a/b/c'],
      ['./', 'https://example.com/a/b/c'],
      ['http://example.com/a/%2e%2E/b'],
      ['http://example.com/a/./b/../c'],
      ['http://example.com/a b/ü?q=ü#ü'],
      ['http://[::1]:8080/'],
      ['http://[2001:db8::1]/'],
      ['http://[2001:DB8:0:0:0:0:0:1]/'],
      ['http://192.168.0.1/'],
      ['http://0x7f.1/'],
      ['http://127.1/'],
      ['http://999999999999/'],
      ['http://exa mple.com/'],
      ['http://ex%41mple.com/'],
      ['http:example.com/a'],
      ['http:/example.com/a'],
      ['http:\\\\example.com\\a\\b'],
      ['file:///etc/passwd'],
      ['file://host/share/x'],
      ['file:///C:/x/../y'],
      ['mailto:someone@example.com'],
      ['data:text/plain,hello world'],
      ['javascript:alert(1)'],
      ['urn:isbn:0451450523'],
      ['blob:https://example.com/uuid'],
      ['foo://host/path?q#f'],
      ['foo:/path'],
      ['foo://'],
      ['non-spec:/.//p'],
      ['ws://example.com/chat'],
      ['wss://example.com:443/'],
      ['ftp://user@ftp.example.com:21/file'],
      ['not a url'],
      [''],
      ['http://'],
      ['http://:80/'],
      ['http://example.com:65536/'],
      ['http://example.com:-1/'],
      ['https://example.com:abc/'],
      ['http://[::1/'],
      ['//x'],
      ['x', 'mailto:a@b'],
      ['https://例え.テスト/パス'],
      ['https://münchen.de/'],
      ['https://xn--mnchen-3ya.de/'],
      ['https://EXAMPLE.com./'],
      ['https://ex\u00ADample.com/'],
      ['  https://example.com/ trim  '],
      ['https://exa\tmple.com/a\nb'],
      ['https://example.com/?a=1&b=2&a=3'],
      ['https://example.com/?q=%zz'],
      ['https://example.com/#a#b'],
      ['https://example.com/path?"quote"<>`{}'],
      ["https://example.com/'single'?'q'"],
      ['sc://ñ.test/'],
      ['https://a@b@c/'],
      ['https://user:pa:ss@host/'],
      ['https://%41@host/'],
    ],
  })

  agree({
    name: 'URL setters and its live searchParams',
    run: `([start, changes]) => {
      const parts = ${URL_PARTS}
      const u = new URL(start)
      const seen = []
      for (const [key, value] of changes) {
        if (key === 'append') u.searchParams.append(value[0], value[1])
        else if (key === 'delete') u.searchParams.delete(value)
        else u[key] = value
        seen.push(parts(u))
      }
      return seen
    }`,
    inputs: [
      [
        'https://example.com/p?a=1',
        [
          ['append', ['b', '2 3']],
          ['hash', 'x y'],
          ['pathname', '/new path/ü'],
          ['port', '8443'],
          ['hostname', 'Other.ORG'],
          ['username', 'me'],
          ['password', 'p@ss'],
          ['protocol', 'http'],
          ['search', ''],
          ['host', 'h:99'],
          ['search', '?x=1&y=ü'],
          ['delete', 'x'],
          ['port', '80'],
          ['protocol', 'mailto'],
          ['href', 'https://reset.example/'],
        ],
      ],
      [
        'mailto:a@b',
        [
          ['pathname', 'c@d'],
          ['hash', 'h'],
          ['search', 'subject=hi there'],
        ],
      ],
      ['http://example.com/', [['href', 'not a url']]],
    ],
  })

  agree({
    name: 'URLSearchParams',
    run: `(init) => {
      const p = new URLSearchParams(init)
      const out = [p.toString(), [...p], p.size, [...p.keys()], [...p.values()], p.get('a'), p.getAll('a'), p.has('a')]
      p.append('n', 'a b&c=d+é')
      p.set('a', 'one')
      p.sort()
      out.push(p.toString())
      p.delete('n', 'nope')
      p.delete('b')
      const each = []
      p.forEach((v, k) => each.push(k + '=' + v))
      out.push(p.toString(), each, p.has('a', 'one'), p.has('a', 'two'), String(p))
      return out
    }`,
    inputs: [
      'a=1&b=2&a=3',
      '?x=1',
      'a+b=c+d',
      'a=%zz&b=%41',
      '=x&y=&&z',
      'é=ü&😀=1',
      'k=v=w',
      '',
      '&&&',
      'a=1;b=2',
      'b=2&a=1&c=3&a=0',
      { a: '1', b: 'x y', c: 'ü' },
      [
        ['c', '3'],
        ['a', '4'],
        ['c', '5'],
      ],
      [['only-one']],
    ],
  })

  agree({
    name: 'TextEncoder',
    run: `(s) => {
      const e = new TextEncoder()
      const dest = new Uint8Array(5)
      const into = e.encodeInto(s, dest)
      return [e.encoding, Array.from(e.encode(s)), into.read, into.written, Array.from(dest)]
    }`,
    inputs: [
      '',
      'hello',
      'héllo €😀',
      '\ud800',
      'a\udc00b',
      '\udbff\udfff',
      '\ud83d',
      'aaaa€',
      'ab😀',
      '\u0000\u007f\u0080\u07ff\u0800\uffff',
      'x'.repeat(1000) + 'ü',
    ],
  })

  agree({
    name: 'TextDecoder',
    run: `([label, options, bytes]) => {
      const d = new TextDecoder(label ?? undefined, options ?? undefined)
      return [d.encoding, d.fatal, d.ignoreBOM, d.decode(new Uint8Array(bytes)), d.decode(new Uint8Array(bytes).buffer)]
    }`,
    inputs: [
      [null, null, [104, 195, 169, 108, 108, 111, 32, 226, 130, 172, 240, 159, 152, 128]],
      ['utf-8', {}, []],
      ['UTF8', {}, [0xef, 0xbb, 0xbf, 0x61]],
      ['unicode-1-1-utf-8', { ignoreBOM: true }, [0xef, 0xbb, 0xbf, 0x61]],
      [' utf-8 ', {}, [0x61]],
      ['utf-8', {}, [0xff, 0x61, 0xc0, 0x80, 0xe0, 0x80, 0x80, 0xed, 0xa0, 0x80]],
      ['utf-8', {}, [0xf0, 0x9f, 0x98]],
      ['utf-8', {}, [0xe2, 0x82, 0x61, 0xf4, 0x90, 0x80, 0x80]],
      ['utf-8', { fatal: true }, [0x61, 0xff]],
      ['utf-8', { fatal: true }, [0xf0, 0x9f, 0x98]],
      ['utf-8', { fatal: true }, [0xed, 0xa0, 0x80]],
      ['utf-8', { fatal: true }, [0xf0, 0x9f, 0x98, 0x80]],
      ['utf-16le', {}, [0x61, 0x00, 0x3d, 0xd8, 0x00, 0xde]],
      ['utf-16be', {}, [0x00, 0x61, 0xd8, 0x3d]],
      ['utf-16', {}, [0xff, 0xfe, 0x61, 0x00]],
      ['latin1', {}, [0x41, 0x80, 0x9f, 0xe9, 0xff]],
      ['windows-1252', {}, [0x80, 0x8a, 0x9c]],
      ['iso-8859-2', {}, [0xa1, 0xb1, 0xff]],
      ['koi8-r', {}, [0xc1, 0xc2]],
      ['bogus', {}, []],
      ['', {}, []],
    ],
  })

  agree({
    name: 'TextDecoder streaming',
    run: `(chunks) => {
      const d = new TextDecoder()
      return chunks.map((c, i) => d.decode(new Uint8Array(c), { stream: i < chunks.length - 1 }))
    }`,
    inputs: [
      [[0xe2], [0x82], [0xac, 0x61]],
      [
        [0xf0, 0x9f],
        [0x98, 0x80],
      ],
      [[0xef, 0xbb], [0xbf, 0x61], []],
      [[0xe2, 0x82], []],
    ],
  })

  agree({
    name: 'btoa',
    run: '(s) => btoa(s)',
    inputs: ['', 'f', 'fo', 'foo', 'foob', 'hello world', '\u0000\u00ff\u0080', 'é', '€', '😀', 1234, null],
  })

  agree({
    name: 'atob',
    run: '(s) => Array.from(atob(s), (c) => c.charCodeAt(0))',
    inputs: [
      '',
      'Zg==',
      'Zg=',
      'Zg',
      'Zm9v',
      'Zm9vYg',
      'aGVsbG8gd29ybGQ=',
      ' aGVs\tbG8g\nd29y\fbGQ= ',
      'AP+A',
      '////',
      'Z',
      'Zm9vY',
      'Zg===',
      '=Zg=',
      'Zg==Zg==',
      'Z-_g',
      'Zm9v\u00e9',
      'aGVsbG8\u000bgd29ybGQ=',
    ],
  })

  agree({
    name: 'atob after btoa, every byte',
    run: `() => { let s = ''; for (let i = 0; i < 256; i++) s += String.fromCharCode(i); return [btoa(s), atob(btoa(s)) === s] }`,
    inputs: [null],
  })

  agree({
    name: 'structuredClone',
    run: `(source) => {
      const ids = new Map()
      const show = (v) => {
        if (v === undefined) return 'undefined'
        if (typeof v === 'number') return Object.is(v, -0) ? '-0' : Number.isFinite(v) ? v : String(v)
        if (typeof v === 'bigint') return v + 'n'
        if (typeof v !== 'object' || v === null) return v
        if (ids.has(v)) return { ref: ids.get(v) }
        ids.set(v, ids.size)
        const proto = Object.getPrototypeOf(v)
        const ctor = proto === null ? null : proto.constructor.name
        if (v instanceof Number || v instanceof String || v instanceof Boolean) return { ctor, value: v.valueOf() }
        if (v instanceof Date) return { ctor, time: v.getTime() }
        if (v instanceof RegExp) return { ctor, source: v.source, flags: v.flags, lastIndex: v.lastIndex }
        if (v instanceof Map) return { ctor, entries: [...v].map(([k, x]) => [show(k), show(x)]) }
        if (v instanceof Set) return { ctor, values: [...v].map(show) }
        if (v instanceof ArrayBuffer) return { ctor, bytes: Array.from(new Uint8Array(v)) }
        if (ArrayBuffer.isView(v)) return { ctor, buffer: show(v.buffer), offset: v.byteOffset, bytes: v.byteLength }
        if (v instanceof Error)
          return { ctor, name: v.name, message: v.message, cause: Object.hasOwn(v, 'cause') ? show(v.cause) : 'none', keys: Object.keys(v) }
        return {
          ctor,
          array: Array.isArray(v) ? v.length : false,
          keys: Reflect.ownKeys(v).map(String),
          values: Object.keys(v).map((k) => show(v[k])),
        }
      }
      return show(structuredClone((0, eval)('(' + source + ')')))
    }`,
    inputs: [
      '1',
      '-0',
      'NaN',
      '12n',
      "'text'",
      'null',
      'undefined',
      'true',
      '{ a: 1, b: { c: [1, "x", null] } }',
      '[1, , 3]',
      '(() => { const a = [1, 2]; a.extra = "kept"; return a })()',
      'new Date(86400000)',
      '/ab+c/gi',
      '(() => { const r = /x/y; r.lastIndex = 3; return r })()',
      'new Map([[1, { deep: [1] }], ["k", new Set([2])]])',
      'new Set([1, "1", { o: 1 }])',
      'new Uint8Array([1, 2, 3]).subarray(1)',
      'new Float64Array([1.5, -0])',
      'new DataView(new ArrayBuffer(4), 1, 2)',
      'new ArrayBuffer(3)',
      '(() => { const b = new ArrayBuffer(4); return [new Uint8Array(b), new Uint16Array(b)] })()',
      '(() => { const o = { a: 1 }; o.self = o; return o })()',
      '(() => { const s = [1]; return { x: s, y: s } })()',
      'new TypeError("bad", { cause: { why: 1 } })',
      'new RangeError("r")',
      '(() => { const e = new Error("x"); e.name = "SyntaxError"; e.extra = 1; return e })()',
      '(() => { class MyError extends Error { constructor() { super("mine"); this.name = "MyError" } } return new MyError() })()',
      'new (class Point { constructor() { this.x = 1 } })()',
      '({ get g() { return 7 }, [Symbol("k")]: 1 })',
      'Object.create(null, { a: { value: 1, enumerable: true }, hidden: { value: 2 } })',
      'new Number(3)',
      'new String("s")',
      'new Boolean(false)',
      '() => 1',
      '({ f() {} })',
      'Symbol("s")',
      'Promise.resolve(1)',
      'new WeakMap()',
      'new WeakSet()',
    ],
  })

  agree({
    name: 'queueMicrotask',
    run: `async (callback) => {
      const order = []
      queueMicrotask(() => order.push('m1'))
      Promise.resolve().then(() => order.push('p1'))
      queueMicrotask(() => { order.push('m2'); queueMicrotask(() => order.push('m3')) })
      order.push('sync')
      if (callback !== null) queueMicrotask(callback)
      for (let i = 0; i < 4; i++) await null
      return order
    }`,
    inputs: [null, 1, 'text', {}],
  })

  agree({
    name: 'names and tags',
    run: `() => [
      [URL, URLSearchParams, TextEncoder, TextDecoder, atob, btoa, structuredClone, queueMicrotask].map((f) => [f.name, typeof f]),
      [new URL('http://a'), new URLSearchParams(''), new TextEncoder(), new TextDecoder()].map((o) => Object.prototype.toString.call(o)),
      ['URL', 'URLSearchParams', 'TextEncoder', 'TextDecoder', 'atob', 'btoa', 'structuredClone', 'queueMicrotask']
        .map((k) => Object.getOwnPropertyDescriptor(globalThis, k)).map((d) => [d.writable, d.enumerable, d.configurable]),
    ]`,
    inputs: [null],
  })
})
