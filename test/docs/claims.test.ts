// Numbers the docs state, checked against the code (issue 18, item 8: the docs said a 128-bit
// handle id; it is 192 bits).
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { ROOT } from '../../scripts/check-examples.js'
import { fromBase64Url } from '../../src/state/crypto.js'
import { harness } from '../errors/harness.js'

const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8')

describe('documented claims', () => {
  it('the pipeline handle is <192-bit random id>.<256-bit HMAC>, as docs/architecture.md says', async () => {
    const h = harness()
    const handles = await Promise.all(Array.from({ length: 20 }, () => h.beginLogin()))
    for (const handle of handles) {
      const [id, mac] = handle.split('.')
      expect(fromBase64Url(id ?? '')?.byteLength).toBe(24)
      expect(fromBase64Url(mac ?? '')?.byteLength).toBe(32)
    }
    expect(new Set(handles).size).toBe(handles.length)
    expect(read('docs/architecture.md')).toContain('192-bit random id')
    for (const file of ['README.md', 'CHANGELOG.md', 'docs/architecture.md']) expect(read(file)).not.toMatch(/128-bit (random id|handle)/)
  })
})
