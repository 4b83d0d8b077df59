/**
 * `ssoflow/oidc`: an OpenID Connect provider (authorization code flow, PKCE when the provider
 * supports it, ID tokens verified against the provider's JWKS) built on oauth4webapi.
 * Uses only web-standard APIs (fetch, WebCrypto, URL): runs on Node 20+, Deno and Bun.
 *
 * @module ssoflow/oidc
 */
export {
  ID_TOKEN_ALGORITHMS,
  mapOidcError,
  OIDC_CLIENT_AUTH_METHODS,
  OIDC_SETUP_VIEW,
  OIDC_STEP_IDS,
  type OidcClientAuthMethod,
  type OidcConfig,
  type OidcFetch,
  type OidcPreset,
  type OidcPresetName,
  type OidcProviderOptions,
  type OidcSetupFieldName,
  type OidcSetupFormError,
  type OidcSetupFormField,
  type OidcSetupFormModel,
  type OidcSetupSuggestion,
  type OidcUserinfoMode,
  oidcProvider,
  parseOidcConfig,
} from '../providers/oidc/index.js'
