import { execFile } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')

/** `npm run quickstart` runs this file; the test runs it the same way (tsx) and reads what it prints. */
async function runQuickstart(): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'examples/quickstart/main.ts'], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: '1' },
      timeout: 60_000,
    })
    return { code: 0, stdout, stderr }
  } catch (e) {
    const failure = e as { code?: number; stdout?: string; stderr?: string }
    return { code: typeof failure.code === 'number' ? failure.code : 1, stdout: failure.stdout ?? '', stderr: failure.stderr ?? '' }
  }
}

describe('examples/quickstart (npm run quickstart)', () => {
  it('walks setup and the three logins to their outcomes without an error', async () => {
    const { code, stdout, stderr } = await runQuickstart()
    expect(stderr).toBe('')
    expect(code).toBe(0)
    expect(stdout).not.toContain('✗')
    // 1. setup by the owner
    expect(stdout).toMatch(/→ setupComplete: provider dummy/)
    expect(stdout).toContain('signal sso_enabled')
    // 2. new user: a confirmation page, then "newuser", then signed in with everything created
    expect(stdout).toMatch(/confirmationRequired: page "confirm-identity", allowed ops \[newuser\]/)
    expect(stdout).toContain('created: user=true identity=true member=true; linked=true; invite accepted=none')
    // 3. returning user: same user, nothing created
    expect(stdout).toContain('created: user=false identity=false member=false; linked=false')
    expect(stdout).toContain('same user as in step 2: true; anything created: false')
    // 4. invited user: the invite is accepted, no second membership is created
    expect(stdout).toContain('invite accepted=member_invite_carol')
    expect(stdout).toContain('signal member_joined')
    // traces are printed for every outcome
    expect(stdout.match(/decision trace:/g)?.length ?? 0).toBeGreaterThanOrEqual(6)
    expect(stdout).toContain('quickstart finished: all four flows completed')
  })
})
