/**
 * Mail templates and their typed data. Rendering is the host's; a plain-text renderer ships
 * in `renderPlainText`. Names (organization, provider, user) arrive as one bounded line of plain
 * text with no link in it (`mailText`): escape them for your format all the same.
 * @group Ports
 */
export interface MailTemplates {
  /** One-time link proving ownership of an existing account (spec 3.12). */
  accountVerification: {
    readonly userName: string
    readonly organizationName: string
    readonly providerName: string
    readonly url: string
    readonly expiresAt: string
  }
  /** Sent to a user created by SSO. */
  newUserConfirmation: {
    readonly userName: string
    readonly organizationName: string
    readonly providerName: string
  }
  /** "Action Required for {org}": link your account to the org's new SSO. */
  ssoLinkRequest: {
    readonly organizationName: string
    readonly providerName: string
    readonly loginUrl: string
  }
  /** SSO was disabled for the organization. */
  ssoUnlinked: {
    readonly organizationName: string
    readonly providerName: string
  }
}

/** A template name. @group Ports */
export type MailTemplate = keyof MailTemplates

/**
 * One message. `idempotencyKey` is stable for a logical message so a retried flow does not mail
 * twice: mailers should drop a second send with the same key.
 * @group Ports
 */
export type MailMessage = {
  [K in MailTemplate]: {
    readonly template: K
    readonly to: string
    readonly data: MailTemplates[K]
    readonly idempotencyKey: string
  }
}[MailTemplate]

/**
 * Sends mail. Called only after the flow's transaction committed.
 * @group Ports
 */
export interface MailerPort {
  send(message: MailMessage): Promise<void>
}
