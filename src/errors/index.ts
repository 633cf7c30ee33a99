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
  hint: string
}

/** Every error code Covenant emits, with its HTTP status and default message. */
export const ERROR_CODES = {
  // general
  INVALID_INPUT: {
    status: 400,
    message: 'the input is not valid',
    hint: 'fix what the message names; every command has --help',
  },
  NOT_FOUND: { status: 404, message: 'not found', hint: 'check the path or name in the message' },
  INTERNAL: {
    status: 500,
    message: 'internal error',
    hint: 'this is a bug in Covenant: the node log (<data>/node.log) has the details',
  },
  NOT_STARTED: {
    status: 503,
    message: 'the component is not started',
    hint: 'wait for the node to be ready, then retry',
  },
  CONFIG_INVALID: {
    status: 400,
    message: 'the configuration is not valid',
    hint: 'fix the field named above',
  },
  PORT_IN_USE: {
    status: 409,
    message: 'a port is already in use',
    hint: 'stop what uses it (a devnet still running?), or choose other ports: --base-port for a devnet, --http and --listen for a node',
  },
  // sandbox
  FUEL_EXHAUSTED: {
    status: 422,
    message: 'the call used all its fuel',
    hint: 'raise --fuel, or make the function do less work',
  },
  MEMORY_LIMIT: { status: 422, message: 'the call exceeded its memory limit', hint: 'raise --memory' },
  STACK_OVERFLOW: {
    status: 422,
    message: 'maximum call stack depth exceeded',
    hint: 'the function recurses too deeply: make it iterate',
  },
  TIMEOUT: { status: 422, message: 'the call exceeded its wall-clock limit', hint: 'raise --timeout' },
  OUTPUT_TOO_LARGE: {
    status: 422,
    message: 'the result is larger than allowed',
    hint: 'return less (1 MiB of JSON unless the call asks for a larger outputMiB tier), or store the data and return its CID',
  },
  LOG_LIMIT: {
    status: 422,
    message: 'the call logged more than allowed',
    hint: 'log less: ctx.log is for short lines',
  },
  INVALID_ARGS: {
    status: 400,
    message: 'the arguments are not valid JSON values or are too large',
    hint: 'pass JSON values (no undefined, NaN or Infinity), at most 1 MiB in all',
  },
  BUNDLE_TOO_LARGE: {
    status: 413,
    message: 'the function bundle is larger than allowed',
    hint: 'a bundle is at most 5 MiB: import less, or only the parts of a package you use',
  },
  INVALID_CODE: {
    status: 422,
    message: 'the function bundle could not be loaded',
    hint: 'try it locally first: `covenant sandbox fn.ts <export>` shows the same error',
  },
  NO_SUCH_EXPORT: {
    status: 404,
    message: 'the bundle has no such export',
    hint: 'call one of the exports named above; `covenant get <cid>` lists a function’s exports',
  },
  USER_ERROR: {
    status: 422,
    message: 'the function threw an error',
    hint: 'the message is the function’s own; run it with `covenant sandbox` to see its logs',
  },
  NEVER_SETTLED: {
    status: 422,
    message: 'the function returned a promise that never settles',
    hint: 'there is no I/O in the sandbox to wait for: resolve the promise from the function itself',
  },
  SANDBOX_CRASHED: {
    status: 500,
    message: 'the sandbox worker crashed',
    hint: 'retry; if it happens again, the node log has the details',
  },
  // content and storage
  INVALID_CID: {
    status: 400,
    message: 'not a valid CID',
    hint: 'a CID is CIDv1 in base32, like bafyrei… (a function) or bafkrei… (a block)',
  },
  HASH_MISMATCH: {
    status: 422,
    message: 'the bytes do not hash to the CID',
    hint: 'the node that sent them is broken or lying: ask another with --node',
  },
  INVALID_OUTPUT: {
    status: 422,
    message: 'a stored output is not what its reference describes',
    hint: 'the executors that certified it stored something else: do not trust the value',
  },
  BLOCK_NOT_FOUND: {
    status: 404,
    message: 'no node holds that block',
    hint: 'check the CID; if it was stored, its holders may all be down: `covenant peers` shows who is alive',
  },
  BLOCK_TOO_LARGE: {
    status: 413,
    message: 'the block is larger than allowed',
    hint: 'a block is at most 5 MiB: split the data',
  },
  STORAGE_FULL: {
    status: 507,
    message: 'the node has no room left under its covenant',
    hint: 'the operator can raise store.maxBytes in its covenant.yaml; other nodes may still have room',
  },
  NOT_A_HOLDER: {
    status: 409,
    message: 'this node is not among the holders of that block or namespace in its view of the network',
    hint: 'send it through any node of the network: it places blocks on their holders and forwards commits to the namespace’s',
  },
  // covenant
  COVENANT_REFUSED: {
    status: 403,
    message: "the node's covenant refuses this",
    hint: 'the message says which rule; `covenant peers` shows what each node accepts, so use another node or other tags',
  },
  COVENANT_INVALID: {
    status: 400,
    message: 'the covenant is not valid',
    hint: 'fix the field named above; docs/covenants.md describes every field',
  },
  // network and protocol
  PROTOCOL_ERROR: {
    status: 400,
    message: 'the message does not follow the protocol',
    hint: 'the other side runs an incompatible or broken version: try another node',
  },
  MESSAGE_TOO_LARGE: {
    status: 413,
    message: 'the message is larger than allowed',
    hint: 'send less at once',
  },
  PEER_UNREACHABLE: {
    status: 502,
    message: 'the peer could not be reached',
    hint: '`covenant peers` shows which peers are alive',
  },
  PEER_TIMEOUT: {
    status: 504,
    message: 'the peer did not answer in time',
    hint: 'retry; the peer may be overloaded',
  },
  PEER_BUSY: { status: 503, message: 'the peer is busy; try again later', hint: 'retry in a moment' },
  NODE_UNREACHABLE: {
    status: 502,
    message: 'no Covenant node answered',
    hint: 'start a local network with `npm start` (or `npx covenant devnet`), or pass --node URL',
  },
  // execution
  INVALID_REQUEST: {
    status: 400,
    message: 'the invocation request is not valid',
    hint: 'fix the field named above; docs/calling.md describes the request',
  },
  INVALID_SIGNATURE: {
    status: 401,
    message: 'the signature does not verify',
    hint: 'the data was changed after it was signed, or signed by another key',
  },
  DEADLINE_EXCEEDED: {
    status: 408,
    message: 'the request deadline has passed',
    hint: 'retry; if it keeps happening, check this machine’s clock or raise --timeout',
  },
  NO_EXECUTORS: {
    status: 503,
    message: 'not enough nodes are willing to execute this function',
    hint: 'the nodes left out say why (covenant, limits, liveness): ask for fewer --replicas/--quorum, lower limits, or run nodes that accept it',
  },
  NO_QUORUM: {
    status: 502,
    message: 'not enough executors agreed on one result',
    hint: 'retry (other executors are chosen as needed); disagreeing receipts are kept as conflict evidence',
  },
  INVALID_CERTIFICATE: {
    status: 422,
    message: 'the quorum certificate does not verify',
    hint: 'do not trust the result: the gateway or an executor is broken or lying; use another --node',
  },
  FAULT_REFUSED: {
    status: 400,
    message: 'fault injection is only allowed in a devnet',
    hint: 'run faulty nodes only inside `covenant devnet`',
  },
  INVALID_CONFLICT: {
    status: 422,
    message: 'the conflict evidence does not verify',
    hint: 'the evidence was changed or forged; it is ignored',
  },
  INVALID_KEY_ID: {
    status: 400,
    message: 'not a key id in its one canonical spelling',
    hint: 'write a key id as its base58btc libp2p peer id (12D3KooW…), the form `covenant keys` prints',
  },
  NOT_SELECTED: {
    status: 403,
    message: 'this node is not among the executors the selection rule picks for the request',
    hint: 'call through a gateway or the SDK, which ask the executors the selection picks; a gateway moves on by itself',
  },

  // ── capabilities (src/caps) and datastores (src/datastore) ──────────────────────────────────
  GRANT_MALFORMED: {
    status: 400,
    message: 'the capability token is malformed',
    hint: 'pass the grant exactly as delegateWrite returned it: UCAN 0.9 tokens in DAG-CBOR, leaf first',
  },
  GRANT_FORGED: {
    status: 401,
    message: 'a signature in the capability does not verify',
    hint: 'the token was altered or not signed by its issuer; ask the issuer for a new one',
  },
  GRANT_EXPIRED: {
    status: 403,
    message: 'the capability has expired',
    hint: 'ask its issuer for a new delegation',
  },
  GRANT_NOT_YET_VALID: {
    status: 403,
    message: 'the capability is not valid yet',
    hint: 'wait until its start time, or check this machine’s clock',
  },
  GRANT_WIDENED: {
    status: 403,
    message: 'the capability is used for more than it grants',
    hint: 'a re-delegation may only narrow (same or longer prefix, same or earlier expiry); write only keys under the granted prefix',
  },
  GRANT_REVOKED: {
    status: 403,
    message: 'the capability has been revoked',
    hint: 'ask the namespace owner for a new delegation',
  },
  GRANT_WRONG_AUDIENCE: {
    status: 403,
    message: 'the capability is addressed to another writer or namespace',
    hint: 'a grant names one writer (a key, or a function by its CID: changed code has a new CID and needs a new grant) and one namespace',
  },
  GRANT_BROKEN_CHAIN: {
    status: 403,
    message: 'the delegation chain does not lead back to the namespace owner',
    hint: 'include every delegation from yours up to the owner’s, in order, as delegateWrite returns them',
  },
  GRANT_MISSING: {
    status: 403,
    message: 'writing here needs a capability',
    hint: 'ask the namespace owner to delegate store/write to you',
  },
  INVOCATION_REPLAYED: {
    status: 409,
    message: 'this nonce was already used for another write',
    hint: 'sign each write with a fresh nonce (invokeWrite makes one if none is given)',
  },
  INVOCATION_OUTSIDE_WINDOW: {
    status: 408,
    message: 'the write invocation is outside its time window',
    hint: 'sign the write again now, and check this machine’s clock',
  },
  REVOCATION_REFUSED: {
    status: 403,
    message: 'the revocation is not valid',
    hint: 'only the issuer of a delegation, or an issuer above it in its chain, may revoke it',
  },
  WRITE_CONFLICT: {
    status: 409,
    message: 'a key the commit read has changed since',
    hint: 'read the key again and retry the write',
  },
  WRITE_POLICY_UNMET: {
    status: 403,
    message: 'the commit does not meet the namespace’s write policy',
    hint: 'run the function with at least the k and q the namespace’s policy asks, on executors it accepts',
  },
  NAMESPACE_NOT_FOUND: {
    status: 404,
    message: 'this holder does not hold that namespace',
    hint: 'check the namespace id, or ask one of the nodes closest to it',
  },
  NAMESPACE_INVALID: {
    status: 400,
    message: 'the namespace descriptor is not valid',
    hint: 'create the descriptor with createNamespace and sign it with the owner key',
  },
  ENTRY_INVALID: {
    status: 400,
    message: 'the history entry is not valid',
    hint: 'the entry was built or changed outside Covenant; pull the history again from a holder',
  },
  ENTRY_FORK: {
    status: 409,
    message: 'the entry does not chain onto this holder’s history',
    hint: 'compare heads with the sender; the two histories have forked',
  },
  ENTRY_PROMISED: {
    status: 409,
    message: 'this holder promised that seq of the namespace to another primary’s entry',
    hint: 'two nodes are acting as the namespace’s primary at once (their views differ): send the commit again in a moment',
  },
  COMMIT_UNCONFIRMED: {
    status: 503,
    message: 'fewer than a majority of the namespace’s holders took the commit',
    hint: 'it may or may not have landed: send the same commit again once the holders are reachable (a commit is idempotent by its id: one that landed answers its earlier result)',
  },
  ENTRY_GAP: {
    status: 409,
    message: 'the entry is ahead of this holder’s history',
    hint: 'fetch the missing entries first (entriesSince the local head)',
  },
  STORE_NOT_FIXED: {
    status: 422,
    message: 'the function read a namespace whose version the request does not fix',
    hint: 'name every namespace the function reads when calling it: `stores: [ns]` in the SDK, `--store NS` on the command line',
  },
  STORE_LIMIT: {
    status: 413,
    message: 'the commit exceeds a datastore limit',
    hint: 'write fewer or smaller values per commit (docs/apps.md lists the limits)',
  },

  // ── payments (src/ledger) ────────────────────────────────────────────────────────────────────
  PAYMENT_REQUIRED: {
    status: 402,
    message: 'the caller is past the credit this node extends',
    hint: 'pay this node: send it a cheque whose cumulative amount reaches `payUpTo` in the details, then call again (or ask for less fuel)',
  },
  INVALID_CHEQUE: {
    status: 422,
    message: 'the cheque does not verify',
    hint: 'a cheque names its payer and payee, carries a cumulative amount in whole nano-credits, and is signed by its payer; sign a new one',
  },
  INVALID_INVOICE: {
    status: 422,
    message: 'the invoice does not verify',
    hint: 'an invoice is signed by its holder, charges the price of a covenant version it names, and bills each period once',
  },
  INVALID_DEPOSIT: {
    status: 422,
    message: 'the deposit does not verify',
    hint: 'a deposit is signed by the node that granted it and names the caller it credits',
  },
  FAUCET_REFUSED: {
    status: 403,
    message: 'the faucet mints credit only on a devnet node, up to its limit per caller',
    hint: 'on a real network, pay with cheques',
  },
  PRICE_UNKNOWN: {
    status: 409,
    message: 'the price of a covenant version a receipt names is not known',
    hint: 'fetch the executor’s signed covenant (GET /v1/peers) and record the certificate again',
  },
  AMOUNT_TOO_LARGE: {
    status: 422,
    message: 'the amount is larger than the ledger counts exactly',
    hint: 'amounts are whole nano-credits up to 2^53 − 1 (about 9 million credits)',
  },
  READ_REFUSED: {
    status: 403,
    message: 'this namespace is private',
    hint: 'only its owner reads a private namespace: read with the owner’s key (--key)',
  },

  // ── jobs (src/jobs) ──────────────────────────────────────────────────────────────────────────
  JOB_NOT_FOUND: {
    status: 404,
    message: 'no keeper holds that job',
    hint: 'check the job id; a job is kept by the nodes closest to its id, and forgotten some days after it ended',
  },
  JOB_INVALID: {
    status: 400,
    message: 'the job is not valid',
    hint: 'fix what the message names; `covenant job enqueue --help` lists the options and their ranges',
  },
  JOB_CANCELLED: {
    status: 409,
    message: 'the job was cancelled',
    hint: 'its enqueuer cancelled it before it succeeded: enqueue it again to run it',
  },
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
  throw new CovenantError(issueCode(parsed.error, code), `${what}: ${path}: ${issue?.message ?? 'invalid'}`)
}

/**
 * The error code a refusal of `error` should carry: the code its failed checks name for
 * themselves (a refinement's `params: { code }`, such as INVALID_KEY_ID for a key id in another
 * spelling) when every one of them names the same, else `fallback`. So one kind of mistake gets
 * one code at every boundary that parses it, and a value wrong in several ways keeps the
 * boundary's own code.
 */
export function issueCode(error: z.ZodError, fallback: ErrorCode): ErrorCode {
  const codes = new Set(error.issues.map((i) => (i as { params?: { code?: unknown } }).params?.code))
  const [only] = codes
  return codes.size === 1 && isErrorCode(only) ? only : fallback
}
