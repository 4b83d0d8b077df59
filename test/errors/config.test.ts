// createAuthPipeline validates every option once (issue 18, item 2): all problems are thrown
// together as one SsoflowError (CONFIG_INVALID), each named by its path, so a misconfiguration
// never surfaces as a (retryable!) failure on the first login.
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { type AuthPipelineOptions, createAuthPipeline, ERROR_CODES, SsoflowError } from '../../src/index.js'
import { runs } from '../helpers/runs.js'
import { harness } from './harness.js'

function thrown(options: unknown): SsoflowError {
  try {
    createAuthPipeline(options as AuthPipelineOptions)
  } catch (e) {
    if (e instanceof SsoflowError) return e
    throw new Error(`expected a SsoflowError, got ${String(e)}`)
  }
  throw new Error('expected createAuthPipeline to throw')
}

describe('createAuthPipeline option validation', () => {
  it('throws one CONFIG_INVALID listing every problem by path', () => {
    const { options } = harness()
    const { getLinkedIdentity: _dropped, ...storage } = options.storage
    const { pipelineCallback: _missing, ...urls } = options.urls
    const error = thrown({
      ...options,
      storage,
      urls: { ...urls, baseUrl: 'app.example.com' },
      providers: { dummy: { ...options.providers.dummy, key: 'other' } },
      secret: 'too short',
      policy: { stateTtlSeconds: 0, memberPageSize: 2.5, newUser: 'always' },
      hooks: { authorize: 'owner' },
      clock: { now: new Date() },
    })
    expect(error.code).toBe('CONFIG_INVALID')
    expect(error.message.startsWith(ERROR_CODES.CONFIG_INVALID)).toBe(true)
    const paths = error.issues.map((i) => i.path).sort()
    expect(paths).toEqual(
      [
        'clock.now',
        'hooks.authorize',
        'policy.memberPageSize',
        'policy.newUser',
        'policy.stateTtlSeconds',
        'providers.dummy.key',
        'secret',
        'storage.getLinkedIdentity',
        'urls.baseUrl',
        'urls.pipelineCallback',
      ].sort(),
    )
    for (const path of paths) expect(error.message).toContain(`${path}: `)
  })

  it('a missing URL function is refused at creation, not on the first login (the README example missed five)', () => {
    const { options } = harness()
    const error = thrown({ ...options, urls: { baseUrl: 'https://app.example.com', orgLogin: () => '/' } })
    expect(error.issues.map((i) => i.path).sort()).toEqual(
      ['urls.afterLogin', 'urls.authSettings', 'urls.pipelineCallback', 'urls.providerSettings', 'urls.verifyAccount'].sort(),
    )
  })

  it('no providers, missing ports, or options that are not an object: CONFIG_INVALID, never a TypeError', () => {
    expect(thrown(null).issues).toEqual([{ path: 'options', message: expect.any(String) }])
    expect(
      thrown({})
        .issues.map((i) => i.path)
        .sort(),
    ).toEqual(['mailer', 'providers', 'secret', 'signals', 'storage', 'urls'])
    const { options } = harness()
    expect(thrown({ ...options, providers: {} }).issues.map((i) => i.path)).toEqual(['providers'])
  })

  it('arbitrary option values always end in CONFIG_INVALID (fast-check, 300 cases)', () => {
    const { options } = harness()
    const keys = Object.keys(options) as (keyof AuthPipelineOptions)[]
    fc.assert(
      fc.property(
        fc.constantFrom(...keys),
        fc.anything({ maxDepth: 2 }).filter((v) => v !== undefined),
        (key, value) => {
          let error: unknown = null
          try {
            createAuthPipeline({ ...options, [key]: value } as AuthPipelineOptions)
          } catch (e) {
            error = e
          }
          // A value can be valid by chance (an optional clock replaced by another object...): then no throw.
          if (error !== null) {
            expect(error).toBeInstanceOf(SsoflowError)
            expect((error as SsoflowError).issues.every((i) => i.path === key || i.path.startsWith(`${key}.`))).toBe(true)
          }
        },
      ),
      { numRuns: runs(300) },
    )
  })

  it('a valid configuration does not throw, and a Uint8Array secret of 32 bytes is valid', () => {
    const { options } = harness()
    expect(() => createAuthPipeline({ ...options, secret: new Uint8Array(32) })).not.toThrow()
  })
})
