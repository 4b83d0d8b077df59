// A small browser for the HTTP tests: a cookie jar honouring Path, Max-Age=0 deletion and the
// Secure flag, manual redirects, and helpers to read the handler's pages.

export type Send = (request: Request) => Promise<Response>

interface StoredCookie {
  value: string
  path: string
  secure: boolean
  httpOnly: boolean
  sameSite: string | null
  raw: string
}

export class Browser {
  readonly jar = new Map<string, StoredCookie>()
  /** Every Set-Cookie line received, in order. */
  readonly setCookies: string[] = []

  readonly origin: string
  readonly send: Send

  constructor(origin: string, send: Send) {
    this.origin = origin
    this.send = send
  }

  cookieHeader(path: string): string {
    return [...this.jar]
      .filter(([, c]) => path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`) || c.path === '/')
      .map(([k, c]) => `${k}=${c.value}`)
      .join('; ')
  }

  store(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      this.setCookies.push(line)
      const [pair, ...attrs] = line.split(';').map((s) => s.trim())
      const eq = (pair ?? '').indexOf('=')
      const name = pair!.slice(0, eq)
      const value = pair!.slice(eq + 1)
      const attr = (n: string) => attrs.find((a) => a.toLowerCase().startsWith(`${n.toLowerCase()}=`))?.split('=')[1] ?? null
      const flag = (n: string) => attrs.some((a) => a.toLowerCase() === n.toLowerCase())
      if (attr('Max-Age') === '0') this.jar.delete(name)
      else
        this.jar.set(name, {
          value,
          path: attr('Path') ?? '/',
          secure: flag('Secure'),
          httpOnly: flag('HttpOnly'),
          sameSite: attr('SameSite'),
          raw: line,
        })
    }
  }

  /** The cookie whose name ends with `base` (prefix-agnostic). */
  cookie(base: string): StoredCookie | undefined {
    for (const [k, c] of this.jar) if (k === base || k.endsWith(`-${base}`) || k.endsWith(base)) return c
    return undefined
  }

  cookieName(base: string): string | undefined {
    for (const k of this.jar.keys()) if (k.endsWith(base)) return k
    return undefined
  }

  async request(
    path: string,
    init: { method?: string; body?: string | Uint8Array; headers?: Record<string, string>; noCookies?: boolean } = {},
  ): Promise<Response> {
    const url = new URL(path, this.origin)
    const headers = new Headers(init.headers)
    const cookies = this.cookieHeader(url.pathname)
    if (cookies && !init.noCookies && !headers.has('cookie')) headers.set('cookie', cookies)
    const res = await this.send(
      new Request(url, { method: init.method ?? 'GET', headers, body: init.body as BodyInit | undefined, redirect: 'manual' }),
    )
    this.store(res)
    return res
  }

  get(path: string, headers: Record<string, string> = {}): Promise<Response> {
    return this.request(path, { headers })
  }

  /** A same-origin form POST, as a browser sends it. */
  post(path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
    return this.request(path, {
      method: 'POST',
      body: new URLSearchParams(form).toString(),
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        origin: this.origin,
        'sec-fetch-site': 'same-origin',
        ...headers,
      },
    })
  }
}

/** The hidden csrf value and action of the first form of a page. */
export function formOf(html: string): { action: string; csrf: string } {
  const action = /<form method="post" action="([^"]*)"/.exec(html)?.[1] ?? ''
  const csrf = /name="csrf" value="([^"]*)"/.exec(html)?.[1] ?? ''
  return { action: action.replace(/&amp;/g, '&'), csrf }
}

/** The error code shown on an error page. */
export function errorCode(html: string): string | null {
  return /Error code: <code>([A-Z_]+)<\/code>/.exec(html)?.[1] ?? null
}
