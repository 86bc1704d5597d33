import { assert, expectText, fillField } from './lib.mjs'

const noAuth = (ctx) => (ctx.hasAuth ? (ctx.adminCreated ? false : 'the binary has no create-admin command') : 'the server has no /api/v1/auth endpoints yet')

/** Creates a role and a user with it; the password is set by the administrator (must be changed at first sign-in). */
async function limitedUser(ctx, username, role) {
  const r = await ctx.apiJson('POST', '/records/role', role)
  assert(r.status === 201, `role created: ${JSON.stringify(r.body)}`)
  const u = await ctx.apiJson('POST', '/records/user', { username, display_name: `测试${username}`, email: `${username}@example.com`, role_ids: [r.body.data.id] })
  assert(u.status === 201, `user created: ${JSON.stringify(u.body)}`)
  const p = await ctx.apiJson('POST', `/admin/users/${u.body.data.id}/password`, { password: 'Start#2026-pw' })
  assert(p.status === 204 || p.status === 200, `password set: ${JSON.stringify(p.body)}`)
  return { id: u.body.data.id, password: 'Start#2026-pw' }
}

async function login(page, ctx, name, password) {
  await page.locator('[data-testid="login-name"]').fill(name)
  await page.locator('[data-testid="login-password"]').fill(password)
  await page.locator('[data-testid="login-submit"]').click()
}

export const tests = [
  {
    name: 'auth: unauthenticated visit goes to login and back; wrong password is explained',
    signIn: false,
    skip: noAuth,
    async run(ctx) {
      await ctx.context.clearCookies()
      const page = await ctx.newPage()
      await page.goto(ctx.base + '/records/customer')
      await page.waitForURL(/\/login\?redirect=/)
      await ctx.shot(page, 'login')
      await login(page, ctx, ctx.admin.username, 'wrong-password')
      await expectText(page.locator('[data-testid="login-error"]'), '用户名或密码错误', 'server message')
      await expectText(page.locator('[data-testid="login-error"]'), '锁定', 'hint about lockout')
      await ctx.shot(page, 'login-error')
      await page.locator('[data-testid="login-password"]').fill(ctx.admin.password)
      await page.locator('[data-testid="login-submit"]').click()
      await page.waitForURL(/\/records\/customer$/)
      await page.locator('[data-testid="record-table"]').waitFor()
    },
  },
  {
    name: 'auth: a locked account gets a clear message',
    signIn: false,
    skip: noAuth,
    async run(ctx) {
      const user = await limitedUser(ctx, 'wangwu', { name: '锁定测试', code: 'lock_test', permissions: { customer: { read: 'all' } } })
      const anon = await ctx.apiSession()
      for (let i = 0; i < 6; i++) await anon('POST', '/auth/login', { login: 'wangwu', password: `bad-${i}` })
      await ctx.context.clearCookies()
      const page = await ctx.newPage()
      await page.goto(ctx.base + '/login')
      await login(page, ctx, 'wangwu', user.password)
      await expectText(page.locator('[data-testid="login-error"]'), '锁定', 'locked message')
      await ctx.shot(page, 'login-locked')
    },
  },
  {
    name: 'auth: a limited role sees no forbidden menus or fields (after the forced password change)',
    signIn: false,
    skip: noAuth,
    async run(ctx) {
      await ctx.apiJson('POST', '/records/customer', { name: '权限测试客户', phone: '13900001111' })
      const user = await limitedUser(ctx, 'zhaoliu', {
        name: '只读销售',
        code: 'ro_sales',
        permissions: { customer: { read: 'all' } },
        field_rules: { customer: { phone: 'hidden' } },
      })
      await ctx.context.clearCookies()
      const page = await ctx.newPage()
      await page.goto(ctx.base + '/login')
      await login(page, ctx, 'zhaoliu', user.password)
      // The administrator set the password: it must be changed now.
      const expired = page.locator('[data-testid="expired-form"]')
      await expired.waitFor()
      await ctx.shot(page, 'password-expired')
      const inputs = expired.locator('input[type="password"]')
      await inputs.nth(0).fill('Changed#2026-ok')
      await inputs.nth(1).fill('Changed#2026-ok')
      await expired.locator('button[type="submit"]').click()
      await page.waitForURL(/\/workbench/)
      await page.locator('[data-testid="side-menu"]').waitFor()
      assert((await page.locator('[data-testid="menu-system"]').count()) === 0, 'no System menu')
      await page.locator('[data-testid="menu-customers"]').click()
      await page.locator('[data-testid="menu-item-customer"]').waitFor()
      assert((await page.locator('[data-testid="menu-item-contact"]').count()) === 0, 'no Contacts menu')
      await ctx.shot(page, 'limited-workbench')
      await page.goto(ctx.base + '/records/customer')
      await expectText(page.locator('[data-testid="record-table"]'), '权限测试客户', 'customer visible')
      const head = await page.locator('[data-testid="record-table"] thead').innerText()
      assert(!head.includes('联系电话'), 'hidden field not a column')
      assert((await page.locator('[data-testid="new-record"]').count()) === 0, 'no New button without create')
      await ctx.shot(page, 'limited-list')
      await page.goto(ctx.base + '/system/users')
      await page.locator('[data-testid="forbidden"]').waitFor()
    },
  },
  {
    name: 'auth: a session that expires mid-work goes to login and back, keeping the draft',
    skip: noAuth,
    async run(ctx) {
      const page = await ctx.newPage()
      await page.goto(ctx.base + '/records/customer/new')
      await page.locator('[data-testid="record-form"]').waitFor()
      await fillField(page, 'name', '过期前填写的客户')
      await ctx.context.clearCookies()
      await page.locator('[data-testid="form-submit"]').click()
      await page.waitForURL(/\/login\?redirect=/)
      await login(page, ctx, ctx.admin.username, ctx.admin.password)
      await page.waitForURL(/\/records\/customer\/new/)
      await page.locator('[data-testid="record-form"]').waitFor()
      const v = await page.locator('[data-field="name"] input').inputValue()
      assert(v === '过期前填写的客户', `draft restored (got "${v}")`)
    },
  },
  {
    name: 'auth: sign out from the user menu',
    skip: noAuth,
    async run(ctx) {
      const page = await ctx.newPage()
      await page.goto(ctx.base + '/workbench')
      await page.locator('[data-testid="user-menu"]').click()
      await page.locator('[data-testid="sign-out"]').click()
      await page.waitForURL(/\/login/)
      await page.goto(ctx.base + '/workbench')
      await page.waitForURL(/\/login/)
    },
  },
]
