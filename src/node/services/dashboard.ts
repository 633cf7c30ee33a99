/**
 * The dashboard service: serves the web app built ahead in `src/web/dist` (the page on `GET /`,
 * its hashed assets on `GET /ui/:file`) and the live calls feed it shows (`GET /v1/calls`, server-
 * sent events from the node's call feed). The app reads everything else through the HTTP API.
 * It serves the other browser apps the node is given (node option `apps`) the same way, each
 * under `/apps/<name>/` (examples/guestbook).
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { z } from 'zod'
import { callsRoute } from '../../api/index.ts'
import { CovenantError, parseOrThrow } from '../../errors/index.ts'
import { DASHBOARD_PAGE, type DashboardAsset, loadDashboard } from '../../web/index.ts'
import { route } from '../http.ts'
import type { NodeComponents, NodeService, NodeServiceFactory } from '../service.ts'

export type DashboardServiceComponents = Pick<NodeComponents, 'http' | 'calls'>

export interface DashboardServiceOptions {
  /** browser apps built ahead: name → the folder of their built files, served under `/apps/<name>/` */
  apps?: Record<string, string>
}

/**
 * The page runs only its own script and style; a value a function returned is shown as text,
 * never as markup. It talks to this node, and to other nodes only to read their peer lists: the
 * re-check page builds its view of the network from the nodes its link names, so `connect-src`
 * admits any http(s) origin. The certificate a re-check link carries stays in the URL's fragment,
 * which a browser never sends.
 */
const PAGE_HEADERS = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self' http: https:; " +
    "img-src 'self' data:; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
}

const AssetParamsSchema = z.strictObject({ file: z.string().max(128) })
const AppParamsSchema = z.strictObject({ app: z.string().max(32) })
const AppAssetParamsSchema = AppParamsSchema.extend({ file: z.string().max(128) })

function send(req: FastifyRequest, reply: FastifyReply, asset: DashboardAsset): FastifyReply {
  reply
    .header('content-type', asset.type)
    .header('etag', asset.etag)
    .header('cache-control', asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
    .header('x-content-type-options', 'nosniff')
  if (req.headers['if-none-match'] === asset.etag) return reply.code(304).send()
  return reply.send(asset.body)
}

/** The built-in dashboard service; `createNode` adds it to every node. */
export function dashboardService(
  options: DashboardServiceOptions = {},
): NodeServiceFactory<DashboardServiceComponents> {
  return (c) => createDashboardService(c, options)
}

/** Serves the dashboard, its calls feed, and the apps it is given. */
function createDashboardService(
  c: DashboardServiceComponents,
  options: DashboardServiceOptions,
): NodeService {
  const assets = loadDashboard()
  const page = assets.get(DASHBOARD_PAGE)
  const apps = new Map<string, Map<string, DashboardAsset>>()
  for (const [name, dir] of Object.entries(options.apps ?? {})) {
    try {
      apps.set(name, loadDashboard(dir))
    } catch (err) {
      throw new CovenantError('CONFIG_INVALID', `app ${name}: cannot read its built files in ${dir}`, {
        cause: err,
      })
    }
  }
  const appFiles = (params: unknown): Map<string, DashboardAsset> => {
    const { app } = parseOrThrow(AppParamsSchema, params, 'INVALID_INPUT', 'path')
    const files = apps.get(app)
    if (files === undefined) throw new CovenantError('NOT_FOUND', `this node serves no app ${app}`)
    return files
  }

  // an app's page loads its assets beside itself, so its address ends in a slash
  c.http.get('/apps/:app', async function appRedirect(req, reply) {
    appFiles(req.params)
    return reply.redirect(`${req.url.split('?')[0]}/`, 308)
  })

  c.http.get('/apps/:app/', async function appPage(req, reply) {
    const index = appFiles(req.params).get(DASHBOARD_PAGE)
    if (index === undefined) throw new CovenantError('NOT_FOUND', 'the app has no index.html')
    reply.headers(PAGE_HEADERS)
    return send(req, reply, index)
  })

  c.http.get('/apps/:app/:file', async function appAsset(req, reply) {
    const { app, file } = parseOrThrow(AppAssetParamsSchema, req.params, 'INVALID_INPUT', 'path')
    const asset = file === DASHBOARD_PAGE ? undefined : appFiles({ app }).get(file)
    if (asset === undefined) throw new CovenantError('NOT_FOUND', `the app has no file ${file}`)
    return send(req, reply, asset)
  })

  c.http.get('/', async function dashboard(req, reply) {
    if (page === undefined)
      throw new CovenantError('NOT_FOUND', 'the dashboard is not built; run `npm run build:web`')
    reply.headers(PAGE_HEADERS)
    return send(req, reply, page)
  })

  c.http.get('/ui/:file', async function dashboardAsset(req, reply) {
    const { file } = parseOrThrow(AssetParamsSchema, req.params, 'INVALID_INPUT', 'path')
    const asset = file === DASHBOARD_PAGE ? undefined : assets.get(file)
    if (asset === undefined) throw new CovenantError('NOT_FOUND', `the dashboard has no file ${file}`)
    return send(req, reply, asset)
  })

  route(c.http, callsRoute, async function callsFeed({ query }, _reply, gone) {
    return c.calls.subscribe({ backlog: query.backlog, signal: gone })
  })

  return { name: 'dashboard' }
}
