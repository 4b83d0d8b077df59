import { describe, expect, it } from 'vitest'
import { authError, ERROR_CODES, isAuthError, SsoflowError } from '../../src/errors.js'

describe('AuthError', () => {
  it('codes are UPPER_SNAKE without prefix and each has a message', () => {
    for (const [code, message] of Object.entries(ERROR_CODES)) {
      expect(code).toMatch(/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/)
      expect(code.startsWith('ERR_')).toBe(false)
      expect(message.length).toBeGreaterThan(0)
    }
  })
  it('keeps cause out of serialization', () => {
    const e = authError('PROVIDER_ERROR', { cause: { error_description: 'secret text' }, redirect: 'orgLogin' })
    expect(JSON.stringify(e)).not.toContain('secret text')
    expect(e.cause).toEqual({ error_description: 'secret text' })
    expect(e.redirect).toBe('orgLogin')
  })
  it('marks infrastructure errors retryable', () => {
    expect(authError('STORAGE_CONFLICT').retryable).toBe(true)
    expect(authError('IDENTITY_CONFLICT').retryable).toBe(false)
  })
  it('recognises its own values only', () => {
    expect(isAuthError(authError('STATE_INVALID'))).toBe(true)
    expect(isAuthError({ kind: 'authError', code: 'NOPE' })).toBe(false)
    expect(isAuthError(new SsoflowError('CONFIG_INVALID'))).toBe(false)
  })
})
