/** What one HTTP route is: method, path, and the schema of everything it takes and answers. */
import type { z } from 'zod'
import { CovenantError } from '../errors/index.ts'

export interface RouteSpec {
  method: 'GET' | 'PUT' | 'POST'
  /** fastify syntax: `:name` is a path parameter */
  path: string
  /** path parameters */
  params?: z.ZodType
  /** the query string, one value per key */
  query?: z.ZodType
  /** a JSON body, or `'bytes'` for a raw body of any content type */
  body?: z.ZodType | 'bytes'
  /**
   * a JSON reply, raw `'bytes'`, `'text'`, or `'events'`: a stream of server-sent events, each
   * one JSON value that {@link RouteSpec.event} reads
   */
  reply: z.ZodType | 'bytes' | 'text' | 'events'
  /** with `reply: 'events'`: the schema of each event's data */
  event?: z.ZodType
  /** largest body accepted, in bytes @default 1 MiB */
  bodyLimit?: number
}

type Parsed<T> = T extends z.ZodType ? z.output<T> : undefined

/** What a route's handler receives, every part parsed by its schema. */
export interface RouteInput<S extends RouteSpec> {
  params: Parsed<S['params']>
  query: Parsed<S['query']>
  body: S['body'] extends 'bytes' ? Uint8Array : Parsed<S['body']>
}

/**
 * What a route's handler answers: the JSON its reply schema reads, raw bytes, text, or for an
 * event stream the events, as they come, until the caller goes away (the signal aborts).
 */
export type RouteReply<S extends RouteSpec> = S['reply'] extends z.ZodType
  ? z.input<S['reply']>
  : S['reply'] extends 'bytes'
    ? Uint8Array
    : S['reply'] extends 'events'
      ? AsyncIterable<S['event'] extends z.ZodType ? z.input<S['event']> : never>
      : string

/** The default body limit of a route that sets none. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024

/** A route's path with its parameters filled in (each URI-encoded). */
export function routePath(spec: RouteSpec, params: Record<string, string> = {}): string {
  return spec.path.replace(/:(\w+)/g, (_, name: string) => {
    const value = params[name]
    if (value === undefined) throw new CovenantError('INVALID_INPUT', `${spec.path} needs :${name}`)
    return encodeURIComponent(value)
  })
}
