/**
 * `ssoflow/express`: mounts the `ssoflow/http` handler in Express 5 (or 4). Conversion only:
 * the Node request becomes a Web `Request`, the handler's `Response` is written back.
 *
 * Mount it before any body parser (`express.urlencoded()` would consume the form the handler
 * must read itself):
 *
 * ```ts
 * import express from 'express'
 * import { ssoExpress } from 'ssoflow/express'
 * app.use(ssoExpress(handler)) // serves handler.basePath, passes everything else on
 * ```
 *
 * @module ssoflow/express
 */
import type { SsoHandler } from '../http/handler.js'
import { type NodeRequestLike, type NodeResponseLike, toWebRequest, writeNodeResponse } from '../http/node.js'

/** What the handler's hooks receive as `context` under Express. @group Frameworks */
export interface ExpressContext<Req = NodeRequestLike, Res = NodeResponseLike> {
  readonly req: Req
  readonly res: Res
}

/**
 * An Express middleware serving `handler` under its `basePath`; other paths go to `next()`.
 * Failures of a flow never reach Express's error handler: the handler answers them itself. Only
 * a setup mistake (a body parser mounted before it) or a failure writing the response goes to
 * `next(error)`.
 *
 * @example
 * ```ts
 * import express from 'express'
 * import type { AuthPipeline, SessionEffect } from 'ssoflow'
 * import { type ExpressContext, ssoExpress } from 'ssoflow/express'
 * import { createSsoHandler, type HostSession } from 'ssoflow/http'
 * declare const sso: AuthPipeline // createAuthPipeline(...)
 * declare const mySessions: { read(req: express.Request): HostSession | null; apply(req: express.Request, effects: readonly SessionEffect[]): Promise<void> }
 *
 * const handler = createSsoHandler<ExpressContext<express.Request>>(sso, {
 *   baseUrl: 'https://app.example.com',
 *   basePath: '/auth/sso',
 *   getSession: (_request, { req }) => mySessions.read(req),
 *   applySessionEffects: (effects, { context: { req } }) => mySessions.apply(req, effects),
 * })
 * const app = express()
 * app.use(ssoExpress(handler)) // serves /auth/sso/*, passes everything else on
 * app.use(express.urlencoded()) // body parsers after it: the handler reads its forms itself
 * ```
 * @group Frameworks
 */
export function ssoExpress<Req extends NodeRequestLike, Res extends NodeResponseLike>(
  handler: SsoHandler<ExpressContext<Req, Res>>,
): (req: Req, res: Res, next: (error?: unknown) => void) => void {
  return (req, res, next) => {
    const path = req.originalUrl ?? req.url ?? '/'
    if (!handler.matches(path)) {
      next()
      return
    }
    if ((req as { _body?: unknown })._body === true) {
      next(new Error('ssoflow/express: a body parser consumed the request; mount ssoExpress() before express.urlencoded()'))
      return
    }
    handler
      .fetch(toWebRequest(handler, req), { req, res })
      .then((response) => writeNodeResponse(response, res, req))
      .catch(next)
  }
}

export type { NodeRequestLike, NodeResponseLike } from '../http/node.js'
