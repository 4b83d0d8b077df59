/**
 * The one prelude of the documentation's examples (scripts/check-examples.ts).
 *
 * Every ```ts block of README.md and docs/*.md and every TSDoc `@example` is type-checked as
 * its own module against the package's exports. What an example takes from the host app (your
 * mailer, your web framework, the current session, your orgs) is declared here, once, as a
 * global; nothing else is added to a block, so a missing import of ssoflow is an error.
 *
 * The runtime half (`installPrelude`) gives the same names working values, so that blocks
 * fenced ```ts run (the README's integration) can be executed by
 * test/docs/readme-integration.test.ts: a tiny Express-like `app` that the test drives like a
 * browser, a mailer and analytics that record, and one organization with the dummy provider.
 *
 * Add a name here only for something an app owns; everything ssoflow exports is imported by the
 * example itself.
 */
import type { AuthPipelineOptions, Clock, MailMessage, SessionEffect, SessionInfo, StoragePort, StorageSeedData, UrlConfig } from 'ssoflow'
import type { PrismaClientLike } from 'ssoflow/prisma'
import type { ContractSuite } from 'ssoflow/testing'

/** The request of the example web framework (Express-like). */
export interface ExampleRequest {
  readonly method: 'GET' | 'POST'
  readonly params: Readonly<Record<string, string>>
  readonly query: Readonly<Record<string, string>>
  readonly body: Readonly<Record<string, string>>
  readonly cookies: Readonly<Record<string, string | undefined>>
  /** The app's own session (what `sessionOf` turns into ssoflow's `SessionInfo`). */
  readonly session: { readonly id: string; userId?: string | undefined }
}

/** The response of the example web framework (Express-like, chainable). */
export interface ExampleResponse {
  cookie(name: string, value: string, options?: { readonly httpOnly?: boolean }): ExampleResponse
  redirect(url: string): ExampleResponse
  render(model: unknown): ExampleResponse
}

export type ExampleHandler = (req: ExampleRequest, res: ExampleResponse) => unknown

/** The example web framework: register routes (`get`, `post`, `all`); tests call `handle`. */
export interface ExampleApp {
  get(path: string, handler: ExampleHandler): void
  post(path: string, handler: ExampleHandler): void
  all(path: string, handler: ExampleHandler): void
}

declare global {
  /** The request and response types of the app's web framework. */
  type AppRequest = ExampleRequest
  type AppResponse = ExampleResponse

  // --- the host's own services -----------------------------------------------------------
  /** The app's mailer. */
  var myMailer: { deliver(message: MailMessage): Promise<void> }
  /** The app's analytics. */
  var analytics: { track(event: string, payload: unknown): Promise<void> }
  /** The app's web framework. */
  var app: ExampleApp
  /** Turns the app's session into what ssoflow needs (`id`, `userId`, ...). */
  var sessionOf: (req: ExampleRequest) => SessionInfo
  /** Applies the session effects of an outcome (`login`, `rotate`, `markSsoComplete`...) to the app's session. */
  var applySession: (req: ExampleRequest, effects: readonly SessionEffect[]) => void
  /** The app's URL for an error's redirect hint (`orgLogin`, `authSettings`, `root`) of an org. */
  var errorPage: (hint: 'orgLogin' | 'authSettings' | 'root', req: ExampleRequest) => string
  /** The app's organizations, users and members, as the memory storage seeds them. */
  var myOrganizations: StorageSeedData

  // --- values an example refers to without building them ------------------------------------
  /** The ports of an engine (`storage`, `mailer`, `signals`), as built in the README. */
  var ports: Pick<AuthPipelineOptions, 'storage' | 'mailer' | 'signals'>
  /** A storage port (e.g. `createKyselyStorage(...)`). */
  var storage: StoragePort
  /** The engine secret (>= 32 bytes). */
  var secret: string
  /** The app's URL functions. */
  var urls: UrlConfig
  /** The engine's clock. */
  var clock: Clock
  /** An organization id, a session and a pipeline handle of the current request. */
  var organizationId: string
  var session: SessionInfo
  var handle: string
  /** Fields a form posted. */
  var fields: Record<string, string>
  /** A PostgreSQL connection string. */
  var connectionString: string
  /** The app's generated PrismaClient (Prisma 7, with a driver adapter). */
  var prisma: PrismaClientLike
  /** A storage adapter's contract suite: `storageContract({ name, clock, createStorage })`. */
  var mySuite: ContractSuite
  /** Deno's test registration (for examples that show the Deno runner). */
  var Deno: { test(name: string, fn: () => void | Promise<void>): void }
}

/** A response recorded by the example app. */
export interface Recorded {
  readonly cookies: Record<string, string>
  readonly redirect: string | null
  readonly rendered: unknown
}

/** The example app with what a test needs: call a route as a browser would. */
export interface DrivableApp extends ExampleApp {
  handle(
    method: 'GET' | 'POST',
    url: string,
    browser: { cookies: Record<string, string>; session: { id: string; userId?: string | undefined } },
    body?: Record<string, string>,
  ): Promise<Recorded>
  readonly sessionEffects: SessionEffect[]
}

function createExampleApp(): DrivableApp {
  const routes: { method: 'GET' | 'POST' | 'ALL'; pattern: string; handler: ExampleHandler }[] = []
  const sessionEffects: SessionEffect[] = []
  const match = (pattern: string, pathname: string): Record<string, string> | null => {
    const a = pattern.split('/')
    const b = pathname.split('/')
    if (a.length !== b.length) return null
    const params: Record<string, string> = {}
    for (let i = 0; i < a.length; i++) {
      const p = a[i] ?? ''
      const v = b[i] ?? ''
      if (p.startsWith(':')) params[p.slice(1)] = decodeURIComponent(v)
      else if (p !== v) return null
    }
    return params
  }
  return {
    sessionEffects,
    get: (pattern, handler) => void routes.push({ method: 'GET', pattern, handler }),
    post: (pattern, handler) => void routes.push({ method: 'POST', pattern, handler }),
    all: (pattern, handler) => void routes.push({ method: 'ALL', pattern, handler }),
    async handle(method, url, browser, body = {}) {
      const u = new URL(url, 'https://app.example.com')
      for (const route of routes) {
        if (route.method !== 'ALL' && route.method !== method) continue
        const params = match(route.pattern, u.pathname)
        if (!params) continue
        const recorded = { cookies: {} as Record<string, string>, redirect: null as string | null, rendered: undefined as unknown }
        const res: ExampleResponse = {
          cookie(name, value) {
            recorded.cookies[name] = value
            browser.cookies[name] = value
            return res
          },
          redirect(to) {
            recorded.redirect = to
            return res
          },
          render(model) {
            recorded.rendered = model
            return res
          },
        }
        const req: ExampleRequest = {
          method,
          params,
          query: Object.fromEntries(u.searchParams),
          body,
          cookies: { ...browser.cookies },
          session: browser.session,
        }
        await route.handler(req, res)
        return recorded
      }
      throw new Error(`no route for ${method} ${u.pathname}`)
    },
  }
}

/** Gives the prelude's names working values (memory-friendly fakes); returns the example app. */
export function installPrelude(): { app: DrivableApp; mail: MailMessage[]; tracked: { event: string; payload: unknown }[] } {
  const mail: MailMessage[] = []
  const tracked: { event: string; payload: unknown }[] = []
  const exampleApp = createExampleApp()
  globalThis.myMailer = { deliver: async (message) => void mail.push(message) }
  globalThis.analytics = { track: async (event, payload) => void tracked.push({ event, payload }) }
  globalThis.app = exampleApp
  globalThis.sessionOf = (req) => ({ id: req.session.id, userId: req.session.userId ?? null })
  globalThis.applySession = (req, effects) => {
    exampleApp.sessionEffects.push(...effects)
    for (const effect of effects) if (effect.type === 'login') req.session.userId = effect.userId
  }
  globalThis.errorPage = (hint) => (hint === 'root' ? '/' : `/${hint}`)
  const epoch = new Date('2026-01-01T00:00:00.000Z')
  globalThis.myOrganizations = {
    organizations: [{ id: 'org-acme', slug: 'acme', name: 'Acme', defaultRole: 'member', require2fa: false }],
    providers: [
      {
        id: 'ap-acme',
        organizationId: 'org-acme',
        providerKey: 'dummy',
        config: {},
        allowUnlinked: false,
        scimEnabled: false,
        createdAt: epoch,
      },
    ],
  }
  return { app: exampleApp, mail, tracked }
}
