/**
 * Outbound address policy shared by identity providers (OIDC discovery and endpoints, SAML
 * metadata URLs): IP classification and URL checks, web-standard, with an injected resolver.
 *
 * @module
 */
export { type AddressRange, type ClassifiedAddress, classifyAddress } from './address.js'
export {
  type AddressPolicy,
  type AllowRequest,
  type CheckedUrl,
  checkHostLiteral,
  checkResolvedAddresses,
  checkUrl,
  checkUrlSyntax,
  describeUrlRefusal,
  type HostResolver,
  isLoopbackHost,
  type OutboundFetch,
  type UrlRefusalReason,
  UrlRefusedError,
} from './policy.js'
