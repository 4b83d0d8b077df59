// PLACEHOLDER: owned by the setup pipeline work (issue 4). Replaced, not extended.
import { errAsync } from 'neverthrow'
import { authError } from '../errors.js'
import type { EngineContext } from './context.js'
import type { AuthPipeline } from './types.js'

export type SetupApi = Pick<AuthPipeline, 'finishSetup' | 'disableProvider' | 'resendLinkRequests' | 'updateSettings' | 'refreshIdentity'>

export function createSetupApi(_ctx: EngineContext, _deps: Pick<AuthPipeline, 'finishLogin'>): SetupApi {
  const todo = () => errAsync(authError('CONFIG_INVALID', { message: 'setup pipeline not built yet' }))
  return { finishSetup: todo, disableProvider: todo, resendLinkRequests: todo, updateSettings: todo, refreshIdentity: todo }
}
