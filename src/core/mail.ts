/**
 * Mail text: the plain-text form of untrusted names in mail data (org, provider and user names)
 * and the default plain-text renderer. PURE.
 *
 * An org name is chosen by whoever administers the org, an IdP's user name by whoever runs the
 * IdP: in a mail to someone else (threats 7, 57) it must not be able to carry a message of its
 * own. {@link mailText} keeps it one bounded line of text that no mail client turns into a link.
 *
 * @module
 */
import type { MailMessage } from '../ports/mailer.js'

/** Longest name (in code points, ellipsis included) that goes into mail data. */
export const MAIL_NAME_MAX = 100

const INVISIBLE = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}]/gu
// A dot between two non-space characters is what turns text into a host name (`evil.example`,
// `www.evil.example`, `a@evil.example`): it becomes ONE DOT LEADER, which looks alike and links nothing.
const LINK_DOT = /(?<=\S)\.(?=\S)/g

/**
 * Untrusted text as one bounded line of plain text for mail data:
 * - control, format (bidi overrides, zero-width), private-use, unassigned and line/paragraph
 *   separator characters become spaces; runs of white space become one space; trimmed;
 * - no link survives: `scheme://` loses its slashes' meaning (`https: //`, the scheme stays as
 *   text) and a dot inside a word becomes U+2024 (so `evil.example`, `www.` and addresses are not
 *   host names any more); `<` and `>` become `‹` and `›` (no markup, no `<url>` autolink);
 * - at most `max` code points (an ellipsis marks a cut).
 *
 * Idempotent. Used for every name the engine puts into mail data; the default renderer applies it
 * again to whatever a host passes.
 *
 * @example
 * ```ts
 * import { mailText } from 'ssoflow'
 *
 * // A host template putting an org name into a mail: no link, no markup, one bounded line.
 * mailText('Acme\nVisit https://evil.example <now>') // 'Acme Visit https: //evil․example ‹now›'
 * mailText('A'.repeat(150)).length // 100 (an ellipsis marks the cut)
 * ```
 * @group Core
 */
export function mailText(value: string, max: number = MAIL_NAME_MAX): string {
  const text = String(value)
    .normalize('NFC')
    .replace(INVISIBLE, ' ')
    .replace(/\s+/gu, ' ')
    .trim()
    .replace(/:\s*\/\//g, ': //')
    .replace(LINK_DOT, '\u2024')
    .replace(/</g, '\u2039')
    .replace(/>/g, '\u203A')
  const chars = [...text]
  return chars.length <= max
    ? text
    : `${chars
        .slice(0, Math.max(0, max - 1))
        .join('')
        .trimEnd()}\u2026`
}

/**
 * A rendered mail: one subject line and a plain-text body.
 * @group Core
 */
export interface RenderedMail {
  readonly subject: string
  readonly text: string
}

/**
 * The default plain-text renderer of the engine's mails. Every name goes through
 * {@link mailText} (again), so the only links in a rendered mail are the engine's own (`url`,
 * `loginUrl`). Hosts with their own templates should escape names for their format the same way.
 *
 * @example
 * ```ts
 * import { type MailerPort, renderPlainText } from 'ssoflow'
 * declare const smtp: { sendMail(mail: { to: string; subject: string; text: string; headers: Record<string, string> }): Promise<unknown> } // e.g. nodemailer
 *
 * // A mailer port with the default plain-text templates.
 * const mailer: MailerPort = {
 *   async send(message) {
 *     const { subject, text } = renderPlainText(message) // e.g. 'Confirm your account for Acme' and its body
 *     await smtp.sendMail({ to: message.to, subject, text, headers: { 'Idempotency-Key': message.idempotencyKey } })
 *   },
 * }
 * ```
 * @group Core
 */
export function renderPlainText(message: MailMessage): RenderedMail {
  switch (message.template) {
    case 'accountVerification': {
      const d = message.data
      const org = mailText(d.organizationName)
      return {
        subject: `Confirm your account for ${org}`,
        text: [
          `Hello ${mailText(d.userName)},`,
          '',
          `Someone signed in to ${org} through ${mailText(d.providerName)} with this address. If it was you, open this link to confirm that this account is yours:`,
          '',
          d.url,
          '',
          `The link works once and expires at ${d.expiresAt}. If it was not you, ignore this mail: nothing changes.`,
        ].join('\n'),
      }
    }
    case 'newUserConfirmation': {
      const d = message.data
      const org = mailText(d.organizationName)
      return {
        subject: `Your new account for ${org}`,
        text: [
          `Hello ${mailText(d.userName)},`,
          '',
          `An account was created for you when you signed in to ${org} through ${mailText(d.providerName)}.`,
        ].join('\n'),
      }
    }
    case 'ssoLinkRequest': {
      const d = message.data
      const org = mailText(d.organizationName)
      return {
        subject: `Action required for ${org}`,
        text: [
          `${org} now signs in through ${mailText(d.providerName)}. Link your account the next time you sign in:`,
          '',
          d.loginUrl,
        ].join('\n'),
      }
    }
    case 'ssoUnlinked': {
      const d = message.data
      const org = mailText(d.organizationName)
      return {
        subject: `Single sign-on was turned off for ${org}`,
        text: `${org} no longer signs in through ${mailText(d.providerName)}. Sign in with your password instead.`,
      }
    }
  }
}
