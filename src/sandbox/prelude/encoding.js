// @ts-check
/**
 * `TextEncoder` and `TextDecoder`, from `@exodus/bytes` (bundled at build time): the WHATWG
 * Encoding API for UTF-8, UTF-16 and the single-byte encodings, tested by its authors on QuickJS.
 * The "lite" entry leaves out the tables of the legacy multi-byte encodings (Big5, EUC-JP, GBK, …),
 * which would make the prelude several times larger: decoding with one throws an Error.
 */
import { TextDecoder, TextEncoder } from '@exodus/bytes/encoding-lite.js'
import { define, G } from './intrinsics.js'

define(G, 'TextEncoder', TextEncoder)
define(G, 'TextDecoder', TextDecoder)
