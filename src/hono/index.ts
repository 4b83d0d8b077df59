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
 *
 * @example
 * ```ts
 * import { type Context, Hono } from 'hono'
 * import type { AuthPipeline, SessionEffect } from 'ssoflow'
 * import { ssoHono } from 'ssoflow/hono'
 * import { createSsoHandler, type HostSession } from 'ssoflow/http'
 * declare const sso: AuthPipeline // createAuthPipeline(...)
 * declare const mySessions: { read(c: Context): HostSession | null; apply(c: Context, effects: readonly SessionEffect[]): Promise<void> }
 *
 * const handler = createSsoHandler<Context>(sso, {
 *   baseUrl: 'https://app.example.com',
 *   basePath: '/auth/sso',
 *   getSession: (_request, c) => mySessions.read(c),
 *   applySessionEffects: (effects, { context: c }) => mySessions.apply(c, effects),
 * })
 * const app = new Hono()
 * app.use(ssoHono(handler)) // serves /auth/sso/*, passes everything else on
 * export default app // Deno.serve(app.fetch), Bun, workers
 * ```
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
