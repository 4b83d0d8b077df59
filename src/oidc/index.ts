/**
 * `ssoflow/oidc`: an OpenID Connect provider (authorization code + PKCE) built on oauth4webapi.
 * Uses only web-standard APIs (fetch, WebCrypto, URL): runs on Node 20+, Deno and Bun.
 *
 * @module ssoflow/oidc
 */
export {
  mapOidcError,
  OIDC_SETUP_VIEW,
  OIDC_STEP_IDS,
  type OidcConfig,
  type OidcFetch,
  type OidcProviderOptions,
  oidcProvider,
  parseOidcConfig,
} from '../providers/oidc/index.js'
