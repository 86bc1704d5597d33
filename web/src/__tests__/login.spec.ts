// The login page reacts to each failure code: captcha appears when the server asks for it, a
// locked account shows until when, and a second factor switches to the code step.
import { describe, expect, it, vi, beforeEach } from 'vitest'
import { flushPromises, mount } from '@vue/test-utils'
import { createPinia, setActivePinia } from 'pinia'
import { createMemoryHistory, createRouter } from 'vue-router'
import ElementPlus from 'element-plus'
import { i18n } from '@/locales'
import LoginPage from '@/modules/auth/LoginPage.vue'

type Reply = { status: number; body: unknown }

function mockFetch(routes: Record<string, Reply | Reply[]>) {
  const calls: { url: string; init: RequestInit | undefined }[] = []
  vi.stubGlobal('fetch', async (url: string, init?: RequestInit) => {
    calls.push({ url, init })
    const key = `${init?.method ?? 'GET'} ${url.split('?')[0]}`
    const r = routes[key]
    const reply = Array.isArray(r) ? (r.shift() as Reply) : r
    if (!reply) return new Response(JSON.stringify({ error: { code: 'route_not_found', message: key } }), { status: 404 })
    return new Response(JSON.stringify(reply.body), { status: reply.status })
  })
  return calls
}

const config = { status: 200, body: { data: { registration_enabled: true, password_policy: { min_length: 8, min_classes: 3, expiry_days: 60 }, username_pattern: '^[A-Za-z0-9][A-Za-z0-9_]{2,19}$' } } }

async function mountLogin() {
  const router = createRouter({ history: createMemoryHistory(), routes: [{ path: '/login', component: LoginPage }, { path: '/:p(.*)*', component: { template: '<div />' } }] })
  await router.push('/login')
  const w = mount(LoginPage, { global: { plugins: [router, i18n, ElementPlus] }, attachTo: document.body })
  await flushPromises()
  return { w, router }
}

async function submit(w: Awaited<ReturnType<typeof mountLogin>>['w'], login = 'zhangsan', password = 'x') {
  await w.find('input[data-testid="login-name"]').setValue(login)
  await w.find('input[data-testid="login-password"]').setValue(password)
  await w.find('form').trigger('submit')
  await flushPromises()
}

describe('LoginPage', () => {
  beforeEach(() => {
    setActivePinia(createPinia())
    i18n.global.locale.value = 'zh-CN'
  })

  it('shows the captcha when the server requires it, and sends the answer', async () => {
    const calls = mockFetch({
      'GET /api/v1/auth/config': config,
      'POST /api/v1/auth/login': [
        { status: 401, body: { error: { code: 'invalid_credentials', message: '用户名或密码错误', details: { captcha_required: true } } } },
        { status: 401, body: { error: { code: 'captcha_invalid', message: '验证码错误' } } },
      ],
      'GET /api/v1/auth/captcha': { status: 200, body: { data: { captcha_id: 'c1', image: 'data:image/png;base64,AAAA' } } },
    })
    const { w } = await mountLogin()
    expect(w.find('img.gx-captcha-img').exists()).toBe(false)
    await submit(w)
    expect(w.text()).toContain('用户名或密码错误')
    expect(w.find('img.gx-captcha-img').attributes('src')).toContain('data:image/png')
    await w.find('input[data-testid="login-captcha"]').setValue('ab12')
    await w.find('form').trigger('submit')
    await flushPromises()
    const last = calls.filter((c) => c.url.endsWith('/auth/login')).pop()
    expect(JSON.parse(String(last?.init?.body))).toMatchObject({ captcha_id: 'c1', captcha_answer: 'ab12' })
    expect(w.text()).toContain('验证码错误，请重新输入')
    w.unmount()
  })

  it('explains a locked account with the time it unlocks (Beijing time)', async () => {
    mockFetch({
      'GET /api/v1/auth/config': config,
      'POST /api/v1/auth/login': { status: 423, body: { error: { code: 'account_locked', message: '账户已锁定', details: { locked_until: '2026-11-22T02:00:00Z' } } } },
    })
    const { w } = await mountLogin()
    await submit(w)
    expect(w.text()).toContain('账户已锁定')
    expect(w.text()).toContain('2026-11-22 10:00')
    w.unmount()
  })

  it('goes to the second-factor step and verifies the code', async () => {
    const calls = mockFetch({
      'GET /api/v1/auth/config': config,
      'POST /api/v1/auth/login': { status: 200, body: { data: { status: 'second_factor', challenge_id: 'ch1', methods: ['totp', 'email'] } } },
      'POST /api/v1/auth/login/second-factor': { status: 401, body: { error: { code: 'invalid_code', message: '验证码不正确' } } },
    })
    const { w } = await mountLogin()
    await submit(w)
    expect(w.find('[data-testid="second-factor-form"]').exists()).toBe(true)
    await w.find('input[data-testid="second-code"]').setValue('123456')
    await w.find('[data-testid="second-factor-form"]').trigger('submit')
    await flushPromises()
    const sf = calls.find((c) => c.url.endsWith('/second-factor'))
    expect(JSON.parse(String(sf?.init?.body))).toEqual({ challenge_id: 'ch1', method: 'totp', code: '123456' })
    expect(w.text()).toContain('验证码错误或已过期')
    w.unmount()
  })
})
