/**
 * Size limits applied to every untrusted field at the boundary.
 *
 * @group Model
 */
export const LIMITS = {
  /** Maximum length of any identifier (external id, user id, org id, provider key). */
  id: 255,
  /** Maximum length of an email address (RFC 5321 path limit rounded up). */
  email: 320,
  /** Maximum length of a display name. Longer names are truncated for new users. */
  name: 200,
  /** Maximum size, in bytes of JSON, of provider data stored on an identity. */
  dataBytes: 64 * 1024,
  /** Maximum nesting depth of provider data. */
  dataDepth: 16,
  /** Maximum length of a `next` redirect path. */
  next: 2048,
} as const
