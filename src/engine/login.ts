// PLACEHOLDER: owned by the login pipeline work (issue 3). Replaced, not extended.
import { errAsync } from 'neverthrow'
import { authError } from '../errors.js'
import type { EngineContext } from './context.js'
import type { AuthPipeline } from './types.js'

export type LoginApi = Pick<AuthPipeline, 'finishLogin' | 'explain'>

export function createLoginApi(_ctx: EngineContext): LoginApi {
  const todo = () => errAsync(authError('CONFIG_INVALID', { message: 'login pipeline not built yet' }))
  return { finishLogin: todo, explain: todo }
}
