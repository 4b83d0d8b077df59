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
 * Errors never reach Express's error handler: the handler answers every failure itself.
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
