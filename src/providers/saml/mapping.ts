/**
 * Attribute mapping (spec 1.5): which assertion attribute (or the NameID) gives the identity's
 * id, email and name, with presets for the IdPs docs/saml.md walks through. SAML never sets
 * `emailVerified`.
 *
 * @module
 */

/** The token that stands for the assertion's `Subject/NameID` instead of an attribute name. */
export const NAME_ID = 'NameID'

/** NameID formats. */
export const NAME_ID_FORMATS = {
  unspecified: 'urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified',
  emailAddress: 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress',
  persistent: 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent',
} as const

/**
 * Where the identity's fields come from: an attribute `Name` (exact, case-sensitive) or
 * {@link NAME_ID}. `firstName` / `lastName` are joined into the name when `displayName` is absent.
 * @group Providers
 */
export interface SamlAttributeMapping {
  readonly id: string
  readonly email: string
  readonly firstName: string | null
  readonly lastName: string | null
  readonly displayName: string | null
}

/** Preset names. @group Providers */
export type SamlPreset = 'okta' | 'entra' | 'google' | 'onelogin' | 'jumpcloud'

/** A preset: its mapping and the NameID format requested in the AuthnRequest. @group Providers */
export interface SamlPresetDefinition {
  readonly label: string
  readonly mapping: SamlAttributeMapping
  readonly nameIdFormat: string
}

const ENTRA_CLAIMS = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims'

/**
 * Attribute mappings for the common IdPs, matching the attribute statements docs/saml.md tells
 * the admin to enter. The id is the IdP's immutable user id where the IdP can send one (Okta
 * `user.id`, Entra object id, OneLogin `PersonImmutableID`); Google Workspace and JumpCloud can
 * only send the email, so their id is the NameID (email format).
 * @group Providers
 */
export const SAML_PRESETS: Readonly<Record<SamlPreset, SamlPresetDefinition>> = {
  okta: {
    label: 'Okta',
    mapping: { id: 'id', email: 'email', firstName: 'firstName', lastName: 'lastName', displayName: null },
    nameIdFormat: NAME_ID_FORMATS.unspecified,
  },
  entra: {
    label: 'Microsoft Entra ID',
    mapping: {
      id: 'http://schemas.microsoft.com/identity/claims/objectidentifier',
      email: `${ENTRA_CLAIMS}/emailaddress`,
      firstName: `${ENTRA_CLAIMS}/givenname`,
      lastName: `${ENTRA_CLAIMS}/surname`,
      displayName: 'http://schemas.microsoft.com/identity/claims/displayname',
    },
    nameIdFormat: NAME_ID_FORMATS.unspecified,
  },
  google: {
    label: 'Google Workspace',
    mapping: { id: NAME_ID, email: NAME_ID, firstName: 'firstName', lastName: 'lastName', displayName: null },
    nameIdFormat: NAME_ID_FORMATS.emailAddress,
  },
  onelogin: {
    label: 'OneLogin',
    mapping: { id: 'PersonImmutableID', email: 'User.email', firstName: 'User.FirstName', lastName: 'User.LastName', displayName: null },
    nameIdFormat: NAME_ID_FORMATS.unspecified,
  },
  jumpcloud: {
    label: 'JumpCloud',
    mapping: { id: NAME_ID, email: 'email', firstName: 'firstname', lastName: 'lastname', displayName: null },
    nameIdFormat: NAME_ID_FORMATS.emailAddress,
  },
}

/** The mapping used when no preset is chosen: NameID is the id and the email. */
export const DEFAULT_MAPPING: SamlAttributeMapping = { id: NAME_ID, email: NAME_ID, firstName: null, lastName: null, displayName: null }

/** What the verified assertion says about its subject. */
export interface AssertionSubject {
  readonly nameId: string | null
  /** Attribute name -> values, in document order. */
  readonly attributes: ReadonlyMap<string, readonly string[]>
}

/** The mapped fields, or what is missing and what did arrive (the admin's first debugging need). */
export type MappedIdentity =
  | { readonly ok: true; readonly id: string; readonly email: string; readonly name: string | null }
  | { readonly ok: false; readonly missing: readonly ('id' | 'email')[]; readonly received: readonly string[] }

const MAX_REPORTED_KEYS = 50

function pick(subject: AssertionSubject, key: string | null): string | null {
  if (key === null || key.length === 0) return null
  const value = key === NAME_ID ? subject.nameId : (subject.attributes.get(key)?.find((v) => v.trim().length > 0) ?? null)
  const trimmed = value?.trim() ?? ''
  return trimmed.length > 0 ? trimmed : null
}

/**
 * Applies `mapping` to the subject. The id and the email are required; the name is the display
 * name, else first and last name joined, else null.
 */
export function mapSubject(subject: AssertionSubject, mapping: SamlAttributeMapping): MappedIdentity {
  const id = pick(subject, mapping.id)
  const email = pick(subject, mapping.email)
  if (id === null || email === null) {
    const received = [...(subject.nameId !== null ? [NAME_ID] : []), ...subject.attributes.keys()]
    return {
      ok: false,
      missing: [...(id === null ? (['id'] as const) : []), ...(email === null ? (['email'] as const) : [])],
      received: received.slice(0, MAX_REPORTED_KEYS).map((k) => k.slice(0, 256)),
    }
  }
  const display = pick(subject, mapping.displayName)
  const joined = [pick(subject, mapping.firstName), pick(subject, mapping.lastName)].filter((p): p is string => p !== null).join(' ')
  return { ok: true, id, email, name: display ?? (joined.length > 0 ? joined : null) }
}
