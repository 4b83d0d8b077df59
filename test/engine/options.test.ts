// Issue 12 item 4 (src/engine/options.ts): the checks of createAuthPipeline's options that run at
// validation time: the base URL, the secret's length in bytes, the providers' keys, and the one
// CONFIG_INVALID error naming every problem by path (test/errors/config.test.ts has the rest).
import { describe, expect, it } from 'vitest'
import { assertValidOptions, optionProblems } from '../../src/engine/options.js'
import type { AuthPipelineOptions } from '../../src/engine/types.js'
import { ERROR_CODES, SsoflowError } from '../../src/errors.js'
import { createMemoryStorage } from '../../src/memory/index.js'
import { createRecordingMailer, createRecordingSignals, dummyProvider, sentryStyleUrls } from '../../src/testing/index.js'

function options(extra: Record<string, unknown> = {}): AuthPipelineOptions {
  return {
    storage: createMemoryStorage(),
    mailer: createRecordingMailer(),
    signals: createRecordingSignals(),
    providers: { dummy: dummyProvider() },
    secret: 's'.repeat(32),
    urls: sentryStyleUrls('https://app.example.com'),
    ...extra,
  } as AuthPipelineOptions
}

const withBaseUrl = (baseUrl: string) => options({ urls: { ...sentryStyleUrls('https://app.example.com'), baseUrl } })

describe('option checks at validation time', () => {
  it('the base URL: an absolute http or https URL only', () => {
    for (const ok of ['https://app.example.com', 'http://localhost:3000', 'https://app.example.com/sso/']) {
      expect(optionProblems(withBaseUrl(ok))).toEqual([])
    }
    // wss: and blob: URLs have an origin of their own but are not http(s).
    for (const bad of [
      'ftp://app.example.com',
      'file:///etc/passwd',
      'wss://app.example.com',
      'blob:https://app.example.com/0f6b',
      'app.example.com',
      '/relative',
      '',
      'javascript:alert(1)',
    ]) {
      expect(optionProblems(withBaseUrl(bad))).toEqual([{ path: 'urls.baseUrl', message: 'expected an absolute http(s) URL' }])
    }
  })

  it('the secret is counted in bytes: at least 32 (UTF-8 for a string)', () => {
    const tooShort = [{ path: 'secret', message: 'must be at least 32 bytes' }]
    expect(optionProblems(options({ secret: 's'.repeat(32) }))).toEqual([])
    expect(optionProblems(options({ secret: 's'.repeat(31) }))).toEqual(tooShort)
    // 11 characters of 3 bytes each: 33 bytes; 15 of 2 bytes: 30.
    expect(optionProblems(options({ secret: '€'.repeat(11) }))).toEqual([])
    expect(optionProblems(options({ secret: 'é'.repeat(16) }))).toEqual([])
    expect(optionProblems(options({ secret: 'é'.repeat(15) }))).toEqual(tooShort)
    expect(optionProblems(options({ secret: new Uint8Array(32) }))).toEqual([])
    expect(optionProblems(options({ secret: new Uint8Array(31) }))).toEqual(tooShort)
    // Counted as bytes, never as the text of the array ("0,0,…" is longer than 32 characters).
    expect(optionProblems(options({ secret: new Uint8Array(20) }))).toEqual(tooShort)
    expect(optionProblems(options({ secret: 32 }))).toEqual([{ path: 'secret', message: 'expected a string or a Uint8Array' }])
  })

  it('each provider must be registered under its own key, named in the problem; one provider at least', () => {
    expect(optionProblems(options({ providers: { dummy: dummyProvider(), second: dummyProvider() } }))).toEqual([
      { path: 'providers.second.key', message: 'expected "second" (the key it is registered under)' },
    ])
    expect(optionProblems(options({ providers: { second: dummyProvider({ key: 'second' }) } }))).toEqual([])
    expect(optionProblems(options({ providers: {} }))).toEqual([{ path: 'providers', message: 'at least one provider is required' }])
  })

  it('a port method that is not a function is named with its path', () => {
    expect(optionProblems(options({ mailer: { send: 'smtp://x' } }))).toEqual([{ path: 'mailer.send', message: 'expected a function' }])
    expect(optionProblems(options({ mailer: { send: () => {} } }))).toEqual([])
  })

  it('assertValidOptions: returns for valid options; otherwise one CONFIG_INVALID listing "path: message" joined by "; "', () => {
    expect(assertValidOptions(options())).toBeUndefined()
    let thrown: unknown = null
    try {
      assertValidOptions(options({ secret: 'short', urls: { ...sentryStyleUrls('https://app.example.com'), baseUrl: 'ftp://x' } }))
    } catch (e) {
      thrown = e
    }
    expect(thrown).toBeInstanceOf(SsoflowError)
    const e = thrown as SsoflowError
    expect(e.code).toBe('CONFIG_INVALID')
    expect(e.message).toBe(
      `${ERROR_CODES.CONFIG_INVALID} secret: must be at least 32 bytes; urls.baseUrl: expected an absolute http(s) URL`,
    )
    expect(e.issues).toEqual([
      { path: 'secret', message: 'must be at least 32 bytes' },
      { path: 'urls.baseUrl', message: 'expected an absolute http(s) URL' },
    ])
  })

  it('options that are not an object: one problem at the path "options"', () => {
    for (const bad of [null, 42, 'options']) {
      expect(optionProblems(bad)).toEqual([{ path: 'options', message: expect.any(String) }])
    }
  })
})
