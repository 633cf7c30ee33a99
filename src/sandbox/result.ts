import type { ErrorCode } from '../errors/index.ts'

/**
 * What a call produced. `value` is a plain JSON value (what JSON.stringify then JSON.parse give
 * inside the sandbox; `undefined` becomes `null`), so other parts can hash it as DAG-CBOR. For the
 * same call every field is byte-identical on every executor, except after TIMEOUT or
 * SANDBOX_CRASHED, which depend on the host.
 */
export type SandboxResult =
  | { ok: true; value: unknown; fuel: number; logs: string[] }
  | { ok: false; error: { code: ErrorCode; message: string }; fuel: number; logs: string[] }
