/**
 * Conversion between Node's `http` request/response shapes (as Express and Fastify hand them
 * over) and Web `Request`/`Response`, written against structural types so that no Node
 * built-in or global is imported. Shared by `ssoflow/express` and `ssoflow/fastify`.
 *
 * @module
 */
import type { SsoHandler } from './handler.js'

/** The part of Node's `IncomingMessage` the adapters read. @group HTTP */
export interface NodeRequestLike extends AsyncIterable<Uint8Array | string> {
  readonly method?: string | undefined
  readonly url?: string | undefined
  /** Express keeps the full path here when a router strips its mount path from `url`. */
  readonly originalUrl?: string | undefined
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>
  /** False while the body was not read to its end (Node's `IncomingMessage.complete`). */
  readonly complete?: boolean | undefined
}

/** The part of Node's `ServerResponse` the adapters write. @group HTTP */
export interface NodeResponseLike {
  statusCode: number
  setHeader(name: string, value: string | readonly string[]): unknown
  end(chunk?: string): unknown
}

const encoder = new TextEncoder()

/**
 * A Web `Request` for a Node request: the URL on the handler's origin (never the `Host`
 * header), the headers as sent, and the body streamed lazily (the handler stops reading at
 * its size limit; Node discards the rest).
 */
export function toWebRequest(handler: Pick<SsoHandler<unknown>, 'origin'>, req: NodeRequestLike): Request {
  const method = (req.method ?? 'GET').toUpperCase()
  const url = new URL(req.originalUrl ?? req.url ?? '/', handler.origin)
  const headers = new Headers()
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue
    if (typeof value === 'string') headers.append(name, value)
    else for (const v of value) headers.append(name, v)
  }
  let body: ReadableStream<Uint8Array> | null = null
  if (method !== 'GET' && method !== 'HEAD') {
    // The iterator is made on the first read: a body the handler never reads (refused on its
    // Content-Length) stays untouched, and Node discards it after the response while keeping the
    // connection usable.
    let iterator: AsyncIterator<Uint8Array | string> | null = null
    body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        iterator ??= req[Symbol.asyncIterator]()
        const { done, value } = await iterator.next()
        if (done) controller.close()
        else controller.enqueue(typeof value === 'string' ? encoder.encode(value) : value)
      },
      async cancel() {
        await iterator?.return?.()
      },
    })
  }
  return new Request(url, { method, headers, body, duplex: 'half' } as RequestInit)
}

/**
 * True when the handler answered without reading the whole request body (refused on its size):
 * the connection is then closed after the response rather than reused with unread bytes on it.
 */
export function bodyLeftUnread(req: Pick<NodeRequestLike, 'complete' | 'method'>): boolean {
  const method = (req.method ?? 'GET').toUpperCase()
  return method !== 'GET' && method !== 'HEAD' && req.complete === false
}

/** Writes a Web `Response` (status, every header including each `Set-Cookie`, text body). */
export async function writeNodeResponse(response: Response, res: NodeResponseLike, req?: NodeRequestLike): Promise<void> {
  res.statusCode = response.status
  const cookies = response.headers.getSetCookie()
  response.headers.forEach((value, name) => {
    if (name !== 'set-cookie') res.setHeader(name, value)
  })
  if (cookies.length > 0) res.setHeader('set-cookie', cookies)
  if (req && bodyLeftUnread(req)) res.setHeader('connection', 'close')
  res.end(await response.text())
}
