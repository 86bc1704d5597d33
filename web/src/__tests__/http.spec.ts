import { describe, expect, it, vi, afterEach } from 'vitest'
import { ApiError, http, onUnauthenticated, setApiLanguage } from '@/api/http'

afterEach(() => {
  vi.unstubAllGlobals()
  document.cookie = 'gx_csrf=; expires=Thu, 01 Jan 1970 00:00:00 GMT'
})

describe('http client', () => {
  it('sends the CSRF cookie as a header on writes and the UI language', async () => {
    document.cookie = 'gx_csrf=tok123'
    setApiLanguage('en')
    const seen: Record<string, string>[] = []
    vi.stubGlobal('fetch', async (_u: string, init: RequestInit) => {
      seen.push(init.headers as Record<string, string>)
      return new Response(JSON.stringify({ data: 1 }), { status: 200 })
    })
    await http.get('/meta/objects')
    await http.post('/records/customer', { name: 'x' })
    expect(seen[0]?.['X-CSRF-Token']).toBeUndefined()
    expect(seen[1]?.['X-CSRF-Token']).toBe('tok123')
    expect(seen[1]?.['Accept-Language']).toBe('en')
    setApiLanguage('zh-CN')
  })

  it('turns the error envelope into ApiError with field errors', async () => {
    vi.stubGlobal('fetch', async () =>
      new Response(JSON.stringify({ error: { code: 'validation_failed', message: 'm', fields: { email: ['bad'] }, field_codes: { email: ['invalid_email'] }, request_id: 'r1' } }), { status: 422 }),
    )
    const e = await http.post('/records/customer', {}).catch((x: unknown) => x)
    expect(e).toBeInstanceOf(ApiError)
    expect((e as ApiError).fields).toEqual({ email: ['bad'] })
    expect((e as ApiError).fieldCodes.email).toEqual(['invalid_email'])
    expect((e as ApiError).requestId).toBe('r1')
  })

  it('reports network failures and non-JSON 5xx readably', async () => {
    vi.stubGlobal('fetch', async () => {
      throw new TypeError('Failed to fetch')
    })
    const net = (await http.get('/x').catch((x: unknown) => x)) as ApiError
    expect(net.isNetwork).toBe(true)
    vi.stubGlobal('fetch', async () => new Response('<html>bad gateway</html>', { status: 502, statusText: 'Bad Gateway' }))
    const bad = (await http.get('/x').catch((x: unknown) => x)) as ApiError
    expect(bad.isServer).toBe(true)
    expect(bad.code).toBe('server_error')
  })

  it('calls the session-expired handler on 401 unauthenticated', async () => {
    const handler = vi.fn()
    onUnauthenticated(handler)
    vi.stubGlobal('fetch', async () => new Response(JSON.stringify({ error: { code: 'unauthenticated', message: '请先登录' } }), { status: 401 }))
    await http.get('/records/customer').catch(() => undefined)
    expect(handler).toHaveBeenCalledTimes(1)
    await http.get('/me', undefined, { quiet401: true }).catch(() => undefined)
    expect(handler).toHaveBeenCalledTimes(1)
  })
})
