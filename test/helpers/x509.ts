/**
 * Self-signed X.509 certificates for SAML signing keys in tests: the demo's helper
 * (examples/demo/x509.ts, an RSA or EC key pair and a small hand-built DER certificate checked by
 * `crypto.X509Certificate`), re-exported under the tests' names so that there is one copy.
 */
export { type DemoCertificate as TestCertificate, makeCertificate } from '../../examples/demo/x509.js'
