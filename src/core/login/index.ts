/**
 * The pure login decision core.
 * @module
 */
export { decideLogin } from './decide.js'
export { decideExisting } from './existing.js'
export type * from './facts.js'
export { decideNewUser } from './new-user.js'
export { resolveTarget, type TargetResolution } from './target.js'
export { decideUnknown, verificationMatches } from './unknown.js'
export { planVerificationSend, VERIFICATION_WINDOW_MS, type VerificationSendPlan, type VerificationSends } from './verification-limit.js'
