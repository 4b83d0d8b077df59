/**
 * Signals and their payloads (Sentry's `user_signup`, `sso_enabled`, `member_joined`).
 * @group Ports
 */
export interface SignalPayloads {
  user_signup: {
    readonly userId: string
    readonly source: 'sso'
    readonly provider: string | null
    readonly referrer: string
  }
  sso_enabled: {
    readonly organizationId: string
    readonly userId: string
    readonly provider: string
  }
  member_joined: {
    readonly organizationId: string
    readonly userId: string
    readonly memberId: string
  }
}

/** A signal name. @group Ports */
export type SignalName = keyof SignalPayloads

/** One signal. @group Ports */
export type Signal = { [K in SignalName]: { readonly name: K; readonly payload: SignalPayloads[K] } }[SignalName]

/**
 * Emits signals. Called only after the flow's transaction committed.
 * @group Ports
 */
export interface SignalPort {
  emit(signal: Signal): Promise<void>
}
