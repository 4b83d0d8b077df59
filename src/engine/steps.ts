// PLACEHOLDER: owned by the providers/step-machine work (issue 5). Replaced, not extended.
import { errAsync, type ResultAsync } from 'neverthrow'
import { type AuthError, authError } from '../errors.js'
import type { EngineContext } from './context.js'
import type { AdvanceInput, AuthPipeline, Step } from './types.js'

export interface StepApi {
  beginLogin: AuthPipeline['beginLogin']
  beginSetup: AuthPipeline['beginSetup']
  advance(input: AdvanceInput, finish: Pick<AuthPipeline, 'finishLogin' | 'finishSetup'>): ResultAsync<Step, AuthError>
}

export function createStepApi(_ctx: EngineContext): StepApi {
  const todo = () => errAsync(authError('CONFIG_INVALID', { message: 'step machine not built yet' }))
  return { beginLogin: todo, beginSetup: todo, advance: todo }
}
