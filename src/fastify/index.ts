/**
 * `ssoflow/fastify`: mounts the `ssoflow/http` handler in Fastify 5 as a plugin. Conversion
 * only: inside the plugin the body is left unparsed (the handler reads and bounds the form
 * itself), the request becomes a Web `Request`, the `Response` is written back.
 *
 * ```ts
 * import Fastify from 'fastify'
 * import { ssoFastify } from 'ssoflow/fastify'
 * await app.register(ssoFastify, { handler })
 * ```
 *
 * @module ssoflow/fastify
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { SsoHandler } from '../http/handler.js'
import { bodyLeftUnread, type NodeRequestLike, toWebRequest } from '../http/node.js'

/** What the handler's hooks receive as `context` under Fastify. @group Frameworks */
export interface FastifyContext {
  readonly request: FastifyRequest
  readonly reply: FastifyReply
}

/** Options of {@link ssoFastify}. @group Frameworks */
export interface SsoFastifyOptions {
  readonly handler: SsoHandler<FastifyContext>
}

/**
 * A Fastify plugin registering `GET` and `POST` on `handler.basePath` and everything under it.
 * It is encapsulated: its catch-all content-type parser (which hands the raw body stream to
 * the handler) does not leak into the rest of the app.
 *
 * @example
 * ```ts
 * import Fastify, { type FastifyRequest } from 'fastify'
 * import type { AuthPipeline, SessionEffect } from 'ssoflow'
 * import { type FastifyContext, ssoFastify } from 'ssoflow/fastify'
 * import { createSsoHandler, type HostSession } from 'ssoflow/http'
 * declare const sso: AuthPipeline // createAuthPipeline(...)
 * declare const mySessions: { read(request: FastifyRequest): HostSession | null; apply(request: FastifyRequest, effects: readonly SessionEffect[]): Promise<void> }
 *
 * const handler = createSsoHandler<FastifyContext>(sso, {
 *   baseUrl: 'https://app.example.com',
 *   basePath: '/auth/sso',
 *   getSession: (_request, { request }) => mySessions.read(request),
 *   applySessionEffects: (effects, { context: { request } }) => mySessions.apply(request, effects),
 * })
 * const app = Fastify()
 * await app.register(ssoFastify, { handler }) // GET and POST on /auth/sso and below; the rest of the app keeps its parsers
 * ```
 * @group Frameworks
 */
export async function ssoFastify(fastify: FastifyInstance, options: SsoFastifyOptions): Promise<void> {
  const { handler } = options
  fastify.removeAllContentTypeParsers()
  fastify.addContentTypeParser('*', (_request, payload, done) => done(null, payload))
  const serve = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const raw = request.raw as unknown as NodeRequestLike
    // The parser handed over the untouched stream; GETs have none.
    const source: NodeRequestLike = request.body && typeof request.body === 'object' ? (request.body as NodeRequestLike) : raw
    const web = toWebRequest(handler, {
      method: raw.method,
      url: raw.url,
      headers: raw.headers,
      [Symbol.asyncIterator]: () => source[Symbol.asyncIterator](),
    })
    const response = await handler.fetch(web, { request, reply })
    reply.code(response.status)
    const cookies = response.headers.getSetCookie()
    response.headers.forEach((value, name) => {
      if (name !== 'set-cookie') reply.header(name, value)
    })
    if (cookies.length > 0) reply.header('set-cookie', cookies)
    if (bodyLeftUnread(raw)) reply.header('connection', 'close')
    return reply.send(await response.text())
  }
  const base = handler.basePath
  for (const url of [base === '' ? '/' : base, `${base}/*`]) {
    fastify.route({ method: ['GET', 'POST'], url, handler: serve })
  }
}
