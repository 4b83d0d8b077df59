// A scripted OpenID provider for unit tests of the OIDC provider (through `customFetch`): it
// serves discovery, a JWKS, a token endpoint that signs real RS256 ID tokens, and userinfo.
import type { JsonObject } from '../../src/model/identity.js'
import type { OidcFetch } from '../../src/oidc/index.js'
import type { StepContext } from '../../src/providers/types.js'
import { makeOrganization } from '../../src/testing/fixtures.js'

export const ISSUER = 'https://idp.example.com'
export const CONFIG: JsonObject = { issuer: ISSUER, clientId: 'client-1', clientSecret: 's3cret', clientAuth: 'client_secret_basic' }
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')

// The scripted IdP signs its ID tokens (RS256) with this key and serves it at /jwks.
export const keys = await crypto.subtle.generateKey(
  { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' },
  true,
  ['sign', 'verify'],
)
export const JWKS = { keys: [{ ...(await crypto.subtle.exportKey('jwk', keys.publicKey)), kid: 'k1', use: 'sig', alg: 'RS256' }] }
export async function signJwt(claims: Record<string, unknown>, header: Record<string, unknown> = { alg: 'RS256', typ: 'JWT', kid: 'k1' }) {
  const input = `${b64(header)}.${b64(claims)}`
  const signature = await crypto.subtle.sign('RSASSA-PKCS1-v1_5', keys.privateKey, new TextEncoder().encode(input))
  return `${input}.${Buffer.from(signature).toString('base64url')}`
}

export interface Script {
  claims?: Record<string, unknown>
  token?: (body: URLSearchParams, headers: Record<string, string>) => Response | Promise<Response>
  userinfo?: Record<string, unknown>
  metadata?: Record<string, unknown>
  calls: string[]
}

export function scriptedIdp(script: Script): OidcFetch {
  return async (url, init) => {
    script.calls.push(url)
    if (url === `${ISSUER}/.well-known/openid-configuration`) {
      return Response.json({
        issuer: ISSUER,
        authorization_endpoint: `${ISSUER}/authorize`,
        token_endpoint: `${ISSUER}/token`,
        jwks_uri: `${ISSUER}/jwks`,
        ...(script.userinfo ? { userinfo_endpoint: `${ISSUER}/userinfo` } : {}),
        code_challenge_methods_supported: ['S256'],
        ...script.metadata,
      })
    }
    if (url === `${ISSUER}/jwks`) return Response.json(JWKS)
    if (url === `${ISSUER}/userinfo` && script.userinfo) return Response.json(script.userinfo)
    if (url === `${ISSUER}/token`) {
      const body = new URLSearchParams(String(init.body))
      if (script.token) return script.token(body, init.headers)
      const now = Math.floor(Date.now() / 1000)
      const idToken = await signJwt({ iss: ISSUER, aud: 'client-1', iat: now, exp: now + 300, ...script.claims })
      return Response.json({ access_token: 'at-1', refresh_token: 'rt-1', token_type: 'Bearer', expires_in: 3600, id_token: idToken })
    }
    return new Response('not found', { status: 404 })
  }
}

let n = 0
export function ctx(partial: Partial<StepContext>): StepContext {
  return {
    flow: 'login',
    request: { method: 'GET', query: {}, form: {} },
    data: {},
    config: CONFIG,
    organization: makeOrganization({ id: 'org-1' }),
    callbackUrl: 'https://app.example.com/auth/sso/',
    random: () => `r${String(++n).padStart(3, '0')}${'x'.repeat(40)}`,
    now: new Date('2026-01-01T00:00:00Z'),
    ...partial,
  }
}
