/**
 * The handler's pages: typed page models (what a `render` hook receives) and the default HTML
 * for each. Small and accessible: one `<main>`, a heading, labelled fields in reading order,
 * errors announced with `role="alert"`, plain forms that work without JavaScript. Every dynamic
 * value goes through {@link escapeHtml}; there is no inline script or style, so the strict
 * Content-Security-Policy the handler sends holds.
 *
 * @module
 */
import type { ConfirmationPage, LoginOp } from '../engine/types.js'
import type { AuthError, AuthErrorCode } from '../errors.js'

/** Where a page's form posts, with the CSRF token bound to the pipeline. @group HTTP */
export interface PageForm {
  /** The URL the form posts to (the handler's own route). */
  readonly action: string
  /** Name of the hidden field that carries {@link PageForm.csrf}. */
  readonly csrfField: string
  /** The token minted with this pipeline's cookie; must be posted back unchanged. */
  readonly csrf: string
}

/** A field of a provider form (the OIDC setup form, the dummy provider's form). @group HTTP */
export interface PageField {
  readonly name: string
  readonly label: string
  readonly type: 'text' | 'email' | 'url' | 'password' | 'checkbox' | 'select' | 'textarea'
  readonly required: boolean
  readonly value: string
  /** The choices of a `select` field. */
  readonly options: readonly { readonly value: string; readonly label: string }[]
  /** Help text shown under the field. */
  readonly hint: string | null
  /** An error about this field (shown next to it and linked with `aria-describedby`). */
  readonly error: string | null
  /** Suggestions for this field (e.g. the issuer exactly as the provider names itself). */
  readonly suggestions: readonly { readonly value: string; readonly message: string }[]
}

/**
 * A confirmation page of the login flow (`confirm-link` for a signed-in visitor; `confirm-identity`,
 * the one page every anonymous visitor gets whatever accounts exist, threat 29): what the engine
 * asked the user to decide.
 * @group HTTP
 */
export interface ConfirmationPageView {
  readonly page: 'confirmation'
  readonly confirmation: ConfirmationPage
  /** The choices offered as buttons (`op=confirm` / `op=newuser`), possibly none. */
  readonly allowedOps: readonly LoginOp[]
  readonly form: PageForm
}

/** A form a provider step asked for (view name from the provider, e.g. `oidc-setup-form`). @group HTTP */
export interface ProviderFormPageView {
  readonly page: 'provider-form'
  /** The provider's view name. */
  readonly view: string
  readonly title: string
  readonly fields: readonly PageField[]
  /** Errors about the whole form (not about one field). */
  readonly errors: readonly string[]
  /** An informational message (a form with a notice and no fields is a "continue" page). */
  readonly notice: string | null
  readonly form: PageForm
}

/** The login needs the user's second factor and the host gave no `twoFactorUrl`. @group HTTP */
export interface TwoFactorPageView {
  readonly page: 'two-factor'
  /** Where to continue once the second factor passed (the handler's resume route). */
  readonly resumeUrl: string
}

/** The error exit: a code, a message safe to show, and where to go next. @group HTTP */
export interface ErrorPageView {
  readonly page: 'error'
  readonly status: number
  readonly code: AuthErrorCode
  readonly message: string
  /** A link back (the org's login start when known, else the host's home). */
  readonly backUrl: string
  /** The error value itself (log `cause`, never show it). Null on the `/error` route. */
  readonly error: AuthError | null
}

/**
 * Every page the handler renders. A `render` hook receives one of these and returns HTML or a
 * `Response` (or nothing, to keep the default page).
 * @group HTTP
 */
export type SsoPage = ConfirmationPageView | ProviderFormPageView | TwoFactorPageView | ErrorPageView

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
  '=': '&#61;',
}

/**
 * Escapes text for HTML element content and quoted attribute values.
 *
 * @example
 * ```ts
 * import { escapeHtml, type SsoPage } from 'ssoflow/http'
 *
 * // A `render` hook of createSsoHandler: every value you print goes through escapeHtml.
 * const render = (page: SsoPage) => (page.page === 'error' ? `<h1>Sorry</h1><p>${escapeHtml(page.message)}</p>` : undefined)
 * escapeHtml('<b class="x">Acme & Co</b>') // '&lt;b class&#61;&quot;x&quot;&gt;Acme &amp; Co&lt;/b&gt;'
 * ```
 * @group HTTP
 */
export function escapeHtml(value: unknown): string {
  return String(value ?? '').replace(/[&<>"'`=]/g, (c) => ESCAPES[c] ?? c)
}

/** A link target that is safe in an `href`: http(s) or a path; anything else becomes `#`. */
function safeHref(url: string): string {
  if (url.startsWith('/') && !url.startsWith('//')) return url
  try {
    const u = new URL(url)
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : '#'
  } catch {
    return '#'
  }
}

const e = escapeHtml

function layout(title: string, body: string, stylesheet: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${e(title)}</title>
<link rel="stylesheet" href="${e(stylesheet)}">
</head>
<body>
<main class="ssoflow">
${body}
</main>
</body>
</html>
`
}

function hiddenCsrf(form: PageForm): string {
  return `<input type="hidden" name="${e(form.csrfField)}" value="${e(form.csrf)}">`
}

const OP_LABEL: Readonly<Record<LoginOp, string>> = { confirm: 'Link to my account', newuser: 'Create a new account' }

function identityLine(c: ConfirmationPage): string {
  return `<p>You signed in at <strong>${e(c.provider)}</strong> as <strong>${e(c.identityDisplayName)}</strong> (${e(c.identityIdentifier)}).</p>`
}

function confirmationBody(v: ConfirmationPageView): { title: string; body: string } {
  const c = v.confirmation
  const org = e(c.organization.name)
  const buttons = v.allowedOps
    .map((op, i) => `<button type="submit" name="op" value="${e(op)}"${i === 0 ? ' class="primary"' : ''}>${e(OP_LABEL[op])}</button>`)
    .join('\n')
  const form =
    v.allowedOps.length > 0
      ? `<form method="post" action="${e(v.form.action)}">
${hiddenCsrf(v.form)}
<div class="actions">
${buttons}
</div>
</form>`
      : ''
  switch (c.page) {
    case 'confirm-link':
      return {
        title: `Link your ${c.provider} identity`,
        body: `<h1>Link your ${e(c.provider)} identity</h1>
${identityLine(c)}
<p>You are signed in to ${org} as <strong>${e(c.currentUser.name || c.currentUser.email)}</strong> (${e(c.currentUser.email)}). Link this identity to that account so that you can sign in with single sign-on from now on?</p>
${form}`,
      }
    case 'confirm-identity':
      // One page for every anonymous visitor (threat 29): it cannot say whether an account
      // exists; the mail, to the account's own address, is the only thing that does.
      return {
        title: `Join ${c.organization.name}`,
        body: `<h1>Join ${org}</h1>
${identityLine(c)}
<p><strong>Already have an account with this address?</strong> If it can be linked by email, we have sent a one-time link to the account's address: open it <strong>in this browser</strong> to link it. Or <a href="${e(safeHref(c.loginUrl))}">sign in to your account</a> first, then sign in with single sign-on again.</p>
<p><strong>New here?</strong> Create an account to continue.</p>
${form}`,
      }
  }
}

function fieldHtml(f: PageField, index: number, autofocus: boolean): string {
  const id = `f-${index}-${f.name.replace(/[^A-Za-z0-9_-]/g, '')}`
  const describedBy: string[] = []
  if (f.error) describedBy.push(`${id}-error`)
  if (f.hint) describedBy.push(`${id}-hint`)
  if (f.suggestions.length > 0) describedBy.push(`${id}-suggestions`)
  const attrs = [
    `id="${id}"`,
    `name="${e(f.name)}"`,
    f.required && f.type !== 'checkbox' ? 'required' : '',
    f.error ? 'aria-invalid="true"' : '',
    describedBy.length > 0 ? `aria-describedby="${describedBy.join(' ')}"` : '',
    autofocus ? 'autofocus' : '',
  ]
    .filter(Boolean)
    .join(' ')
  const error = f.error ? `<p class="field-error" id="${id}-error">${e(f.error)}</p>` : ''
  const hint = f.hint ? `<p class="hint" id="${id}-hint">${e(f.hint)}</p>` : ''
  const suggestions =
    f.suggestions.length > 0
      ? `<div class="hint" id="${id}-suggestions">${f.suggestions.map((s) => `<p>${e(s.message)} <code>${e(s.value)}</code></p>`).join('')}</div>`
      : ''
  const after = `${error}${hint}${suggestions}`
  if (f.type === 'checkbox') {
    return `<div class="field checkbox"><input type="checkbox" value="on" ${attrs}${f.value === 'on' || f.value === 'true' ? ' checked' : ''}><label for="${id}">${e(f.label)}</label>${after}</div>`
  }
  const label = `<label for="${id}">${e(f.label)}${f.required ? '' : ' <span class="optional">(optional)</span>'}</label>`
  if (f.type === 'select') {
    const options = f.options
      .map((o) => `<option value="${e(o.value)}"${o.value === f.value ? ' selected' : ''}>${e(o.label)}</option>`)
      .join('')
    return `<div class="field">${label}<select ${attrs}>${options}</select>${after}</div>`
  }
  if (f.type === 'textarea') {
    return `<div class="field">${label}<textarea rows="6" spellcheck="false" ${attrs}>${e(f.value)}</textarea>${after}</div>`
  }
  const value = f.type === 'password' ? '' : ` value="${e(f.value)}"`
  const autocomplete = f.type === 'password' ? ' autocomplete="off"' : f.type === 'email' ? ' autocomplete="email"' : ''
  return `<div class="field">${label}<input type="${f.type}"${value}${autocomplete} ${attrs}>${after}</div>`
}

function providerFormBody(v: ProviderFormPageView): string {
  const firstInvalid = v.fields.findIndex((f) => f.error !== null)
  const focus = Math.max(firstInvalid, 0)
  return `<h1>${e(v.title)}</h1>
${v.errors.length > 0 ? `<div class="error" role="alert">${v.errors.map((m) => `<p>${e(m)}</p>`).join('')}</div>` : ''}
${v.notice ? `<p class="notice" role="status">${e(v.notice)}</p>` : ''}
<form method="post" action="${e(v.form.action)}" novalidate>
${hiddenCsrf(v.form)}
${v.fields.map((f, i) => fieldHtml(f, i, i === focus)).join('\n')}
<div class="actions"><button type="submit" class="primary">Continue</button></div>
</form>`
}

function errorBody(v: ErrorPageView): string {
  return `<h1>Sign-in could not continue</h1>
<div class="error" role="alert"><p>${e(v.message)}</p></div>
<p class="code">Error code: <code>${e(v.code)}</code></p>
<p><a class="button primary" href="${e(safeHref(v.backUrl))}">Start again</a></p>`
}

function twoFactorBody(v: TwoFactorPageView): string {
  return `<h1>Second factor required</h1>
<p>Your account uses a second factor. Complete it, then continue.</p>
<p><a class="button primary" href="${e(safeHref(v.resumeUrl))}">Continue</a></p>`
}

/**
 * The default title and HTML of a page. `stylesheet` is the URL of the handler's CSS.
 *
 * @example
 * ```ts
 * import { createSsoHandler, renderDefaultPage, type SsoPage } from 'ssoflow/http'
 * import type { AuthPipeline } from 'ssoflow'
 * declare const sso: AuthPipeline
 *
 * // A `render` hook that keeps the default pages and adds the app's banner above them.
 * const render = (page: SsoPage) => renderDefaultPage(page, '/auth/sso/ssoflow.css').replace('<main', '<header>Acme</header><main')
 * const handler = createSsoHandler(sso, { baseUrl: 'https://app.example.com', basePath: '/auth/sso', render, getSession: () => null, applySessionEffects: () => {} })
 * ```
 * @group HTTP
 */
export function renderDefaultPage(page: SsoPage, stylesheet: string): string {
  switch (page.page) {
    case 'confirmation': {
      const { title, body } = confirmationBody(page)
      return layout(title, body, stylesheet)
    }
    case 'provider-form':
      return layout(page.title, providerFormBody(page), stylesheet)
    case 'two-factor':
      return layout('Second factor required', twoFactorBody(page), stylesheet)
    case 'error':
      return layout('Sign-in could not continue', errorBody(page), stylesheet)
  }
}

/** What the ACS re-post page is made of. */
export interface RepostPageInput {
  /** The same-origin URL the form posts to. */
  readonly action: string
  /** The hidden fields (the IdP's `SAMLResponse` and `RelayState`). */
  readonly fields: Readonly<Record<string, string>>
  /** The CSP nonce that allows the one script. */
  readonly nonce: string
  readonly stylesheet: string
}

/**
 * The page that re-posts an IdP's cross-site form post to this origin (so that the browser sends
 * our SameSite=Lax cookies): hidden fields, a script allowed by `nonce` that submits the form at
 * once, and a button for browsers without scripts. Every value is escaped.
 */
export function renderRepostPage(input: RepostPageInput): string {
  const hidden = Object.entries(input.fields)
    .map(([name, value]) => `<input type="hidden" name="${e(name)}" value="${e(value)}">`)
    .join('\n')
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>Signing you in</title>
<link rel="stylesheet" href="${e(input.stylesheet)}">
</head>
<body>
<main class="ssoflow">
<h1>Signing you in</h1>
<form method="post" action="${e(safeHref(input.action))}" id="ssoflow-repost">
${hidden}
<p>If nothing happens, continue to finish signing in.</p>
<div class="actions"><button type="submit" class="primary">Continue</button></div>
</form>
</main>
<script nonce="${e(input.nonce)}">document.getElementById('ssoflow-repost').submit()</script>
</body>
</html>
`
}

/** The stylesheet of the default pages (served by the handler; no inline styles). */
export const DEFAULT_STYLESHEET = `:root{color-scheme:light dark;--fg:#1d2330;--muted:#5b6475;--bg:#f5f6f8;--card:#fff;--line:#d9dde5;--accent:#3b4fd8;--accent-fg:#fff;--err:#b42318;--err-bg:#fef3f2}
@media (prefers-color-scheme:dark){:root{--fg:#e6e8ee;--muted:#a3aab8;--bg:#14171d;--card:#1d212a;--line:#343a46;--accent:#7d8cff;--accent-fg:#0d1020;--err:#ff9c8f;--err-bg:#3a1a17}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
main.ssoflow{max-width:34rem;margin:3rem auto;padding:2rem;background:var(--card);border:1px solid var(--line);border-radius:12px}
h1{font-size:1.5rem;margin:0 0 1rem}
p{margin:0 0 1rem}
.aside,.code,.hint,.optional{color:var(--muted);font-size:.9rem}
.field{margin:0 0 1rem;display:flex;flex-direction:column;gap:.3rem}
.field.checkbox{flex-direction:row;align-items:center;flex-wrap:wrap}
label{font-weight:600}
input[type=text],input[type=email],input[type=url],input[type=password],select,textarea{font:inherit;padding:.55rem .7rem;border:1px solid var(--line);border-radius:8px;background:var(--bg);color:var(--fg)}
input[aria-invalid=true]{border-color:var(--err)}
input:focus-visible,button:focus-visible,a:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.field-error{color:var(--err);margin:0;font-size:.9rem;width:100%}
.error{background:var(--err-bg);color:var(--err);border-radius:8px;padding:.75rem 1rem;margin:0 0 1rem}
.error p{margin:0}
.notice{background:var(--bg);border-radius:8px;padding:.75rem 1rem}
.hint p{margin:.2rem 0 0}
.actions{display:flex;gap:.75rem;flex-wrap:wrap}
button,.button{font:inherit;display:inline-block;padding:.6rem 1.1rem;border-radius:8px;border:1px solid var(--line);background:var(--card);color:var(--fg);cursor:pointer;text-decoration:none}
button.primary,.button.primary{background:var(--accent);border-color:var(--accent);color:var(--accent-fg)}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:.9em}
`
