/**
 * `ssoflow/hono`: mounts the `ssoflow/http` handler in Hono 4 (Node, Deno, Bun, workers).
 * Hono already speaks `Request`/`Response`, so this is a pass-through.
 *
 * ```ts
 * import { Hono } from 'hono'
 * import { ssoHono } from 'ssoflow/hono'
 * app.use(ssoHono(handler)) // serves handler.basePath, passes everything else on
 * ```
 *
 * @module ssoflow/hono
 */
import type { Context, Env, MiddlewareHandler } from 'hono'
import type { SsoHandler } from '../http/handler.js'

/**
 * A Hono middleware serving `handler` under its `basePath` (the handler's hooks get Hono's
 * `Context` as `context`); other paths go to `next()`. Generic over the app's `Env`.
 * @group Frameworks
 */
export function ssoHono<E extends Env = Env>(handler: SsoHandler<Context<E>>): MiddlewareHandler<E> {
  return async (c, next) => {
    if (!handler.matches(c.req.raw)) {
      await next()
      return
    }
    return handler.fetch(c.req.raw, c)
  }
}
