/**
 * ssoflow: SSO login and setup pipelines with a pure decision core and injected ports.
 *
 * @module ssoflow
 */
export * from './core/effects.js'
export type {
  AccountClaim,
  ClaimedAccountIdentity,
  ConfirmationPageModel,
} from './core/login/facts.js'
export { MAIL_NAME_MAX, mailText, type RenderedMail, renderPlainText } from './core/mail.js'
export type { EffectWarning } from './engine/apply.js'
export { createAuthPipeline } from './engine/create.js'
export type * from './engine/types.js'
export * from './errors.js'
export * from './model/index.js'
export * from './net/index.js'
export * from './ports/index.js'
export type * from './providers/types.js'
export type { Flow, PipelinePhase, PipelineState, StateExpectations } from './state/codec.js'
