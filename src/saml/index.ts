/**
 * `ssoflow/saml`: the SAML 2.0 provider (Node only; optional peers `@node-saml/node-saml`,
 * `@xmldom/xmldom`, `xml-crypto`, `xml-encryption`). See docs/saml.md.
 *
 * @module ssoflow/saml
 */
export * from '../providers/saml/index.js'
