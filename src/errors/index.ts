/**
 * One error style for all of Covenant: every failure is a {@link CovenantError} with a stable
 * `code`. The code is what crosses process boundaries (HTTP replies, protocol messages, CLI JSON),
 * so it never changes meaning once published; the message may be improved freely.
 *
 * @example
 * ```ts
 * throw new CovenantError('COVENANT_REFUSED', 'this node refuses content tagged "nsfw"')
 * ```
 */
import { z } from 'zod'

interface CodeInfo {
  /** HTTP status the node's API answers with */
  status: number
  /** default message, used when none is given */
  message: string
  /** what the user can do about it, shown by the CLI */
  hint?: string
}

/** Every error code Covenant emits, with its HTTP status and default message. */
export const ERROR_CODES = {
  // general
  INVALID_INPUT: { status: 400, message: 'the input is not valid' },
  NOT_FOUND: { status: 404, message: 'not found' },
  INTERNAL: { status: 500, message: 'internal error' },
  NOT_STARTED: { status: 503, message: 'the component is not started' },
  CONFIG_INVALID: {
    status: 400,
    message: 'the configuration is not valid',
    hint: 'fix the field named above',
  },
  // sandbox
  FUEL_EXHAUSTED: {
    status: 422,
    message: 'the call used all its fuel',
    hint: 'raise --fuel, or make the function do less work',
  },
  MEMORY_LIMIT: { status: 422, message: 'the call exceeded its memory limit', hint: 'raise --memory' },
  STACK_OVERFLOW: { status: 422, message: 'maximum call stack depth exceeded' },
  TIMEOUT: { status: 422, message: 'the call exceeded its wall-clock limit', hint: 'raise --timeout' },
  OUTPUT_TOO_LARGE: { status: 422, message: 'the result is larger than allowed' },
  LOG_LIMIT: { status: 422, message: 'the call logged more than allowed' },
  INVALID_ARGS: { status: 400, message: 'the arguments are not valid JSON values or are too large' },
  BUNDLE_TOO_LARGE: { status: 413, message: 'the function bundle is larger than allowed' },
  INVALID_CODE: { status: 422, message: 'the function bundle could not be loaded' },
  NO_SUCH_EXPORT: { status: 404, message: 'the bundle has no such export' },
  USER_ERROR: { status: 422, message: 'the function threw an error' },
  NEVER_SETTLED: { status: 422, message: 'the function returned a promise that never settles' },
  SANDBOX_CRASHED: { status: 500, message: 'the sandbox worker crashed' },
  // content and storage
  INVALID_CID: { status: 400, message: 'not a valid CID' },
  HASH_MISMATCH: { status: 422, message: 'the bytes do not hash to the CID' },
  BLOCK_NOT_FOUND: { status: 404, message: 'no node holds that block' },
  BLOCK_TOO_LARGE: { status: 413, message: 'the block is larger than allowed' },
  STORAGE_FULL: { status: 507, message: 'the node has no room left under its covenant' },
  NOT_A_HOLDER: {
    status: 409,
    message: 'the node is not among the holders of this block, and the sender used its quota',
    hint: 'put the block through a node of the network: it places it on the holders',
  },
  // covenant
  COVENANT_REFUSED: { status: 403, message: "the node's covenant refuses this" },
  COVENANT_INVALID: { status: 400, message: 'the covenant is not valid' },
  // network and protocol
  PROTOCOL_ERROR: { status: 400, message: 'the message does not follow the protocol' },
  MESSAGE_TOO_LARGE: { status: 413, message: 'the message is larger than allowed' },
  PEER_UNREACHABLE: { status: 502, message: 'the peer could not be reached' },
  PEER_TIMEOUT: { status: 504, message: 'the peer did not answer in time' },
  PEER_BUSY: { status: 503, message: 'the peer is busy; try again later' },
  NODE_UNREACHABLE: {
    status: 502,
    message: 'no Covenant node answered',
    hint: 'start a local network with `npx covenant devnet`, or pass --node URL',
  },
  // execution
  INVALID_REQUEST: { status: 400, message: 'the invocation request is not valid' },
  INVALID_SIGNATURE: { status: 401, message: 'the signature does not verify' },
  DEADLINE_EXCEEDED: { status: 408, message: 'the request deadline has passed' },
  NO_EXECUTORS: { status: 503, message: 'not enough nodes are willing to execute this function' },
  NO_QUORUM: { status: 502, message: 'not enough executors agreed on one result' },
  INVALID_CERTIFICATE: { status: 422, message: 'the quorum certificate does not verify' },
  FAULT_REFUSED: { status: 400, message: 'fault injection is only allowed in a devnet' },
  INVALID_CONFLICT: { status: 422, message: 'the conflict evidence does not verify' },
} as const satisfies Record<string, CodeInfo>

export type ErrorCode = keyof typeof ERROR_CODES

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code)
}

/** The shape an error takes on the wire: in HTTP bodies, protocol replies and CLI JSON. */
export interface ErrorJSON {
  code: ErrorCode
  message: string
  details?: unknown
}

/**
 * What is accepted as an {@link ErrorJSON} from elsewhere (an HTTP error body, a protocol error
 * reply). The code is only bounded here: {@link CovenantError.fromJSON} turns a code it does not
 * know into PROTOCOL_ERROR.
 */
export const ErrorJSONSchema = z.object({
  code: z.string().max(64),
  message: z.string().max(4096),
  details: z.unknown().optional(),
})

export class CovenantError extends Error {
  readonly code: ErrorCode
  readonly details?: unknown

  constructor(code: ErrorCode, message?: string, options?: { details?: unknown; cause?: unknown }) {
    super(message ?? ERROR_CODES[code].message, { cause: options?.cause })
    this.name = 'CovenantError'
    this.code = code
    this.details = options?.details
  }

  get status(): number {
    return ERROR_CODES[this.code].status
  }

  get hint(): string | undefined {
    return (ERROR_CODES[this.code] as CodeInfo).hint
  }

  toJSON(): ErrorJSON {
    return this.details === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, details: this.details }
  }

  /**
   * Rebuilds an error received from elsewhere. Never throws: anything that is not an error with a
   * known code becomes PROTOCOL_ERROR, and a message is cut to 4096 characters.
   */
  static fromJSON(value: unknown): CovenantError {
    const v = (typeof value === 'object' && value !== null ? value : {}) as {
      code?: unknown
      message?: unknown
      details?: unknown
    }
    const message = typeof v.message === 'string' ? v.message.slice(0, 4096) : undefined
    if (!isErrorCode(v.code)) {
      const code = typeof v.code === 'string' ? ` ${JSON.stringify(v.code.slice(0, 64))}` : ''
      return new CovenantError('PROTOCOL_ERROR', `peer sent an unknown error${code}: ${message ?? ''}`)
    }
    return new CovenantError(v.code, message, { details: v.details })
  }

  /** Wraps anything thrown into a CovenantError, keeping CovenantErrors as they are. */
  static from(err: unknown, fallback: ErrorCode = 'INTERNAL'): CovenantError {
    if (err instanceof CovenantError) return err
    const message = err instanceof Error ? err.message : String(err)
    return new CovenantError(fallback, message, { cause: err })
  }
}

/**
 * Parses `value` with `schema`, or throws a CovenantError with `code` whose message names the first
 * problem as `what: field.path: what is wrong` (`(root)` when the value itself is wrong). Every
 * boundary that refuses input this way (HTTP bodies and queries, protocol requests, HTTP replies
 * in the client) words its refusals alike.
 */
export function parseOrThrow<S extends z.ZodType>(
  schema: S,
  value: unknown,
  code: ErrorCode,
  what: string,
): z.output<S> {
  const parsed = schema.safeParse(value)
  if (parsed.success) return parsed.data
  const issue = parsed.error.issues[0]
  const path = issue?.path.map(String).join('.') || '(root)'
  throw new CovenantError(code, `${what}: ${path}: ${issue?.message ?? 'invalid'}`)
}
