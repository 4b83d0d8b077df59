/**
 * `ssoflow/http`: one Web-standard HTTP handler (`Request` -> `Response`) for the login and
 * setup pipelines: routes, cookies, CSRF and origin checks, bounded form parsing, default pages
 * and the mapping of outcomes to responses. Runs on Node 20+, Deno, Bun and workers; the
 * `ssoflow/hono`, `ssoflow/express` and `ssoflow/fastify` adapters mount it in a framework.
 *
 * @module ssoflow/http
 */
export {
  createSsoHandler,
  type EffectsResult,
  type HostSession,
  providerForm,
  type RenderResult,
  type SsoHandler,
  type SsoHandlerOptions,
  type SsoRequestEvent,
  type SsoResultEvent,
  ssoHandlerUrls,
  statusFor,
} from './handler.js'
export {
  type ConfirmationPageView,
  DEFAULT_STYLESHEET,
  type ErrorPageView,
  escapeHtml,
  type PageField,
  type PageForm,
  type ProviderFormPageView,
  renderDefaultPage,
  type SsoPage,
  type TwoFactorPageView,
} from './pages.js'
