import { assert, expectText } from './lib.mjs'

export const tests = [
  {
    name: 'admin: department tree, users, roles matrix, logs and parameters render',
    skip: (ctx) => (ctx.hasAuth && ctx.adminCreated ? false : 'needs the identity endpoints and an administrator'),
    async run(ctx) {
      const root = await ctx.apiJson('POST', '/records/department', { name: '总部', code: 'HQ' })
      await ctx.apiJson('POST', '/records/department', { name: '华中分公司', code: 'HZ', parent_id: root.body.data.id })
      const page = await ctx.newPage()
      await page.goto(ctx.base + '/system/departments')
      await expectText(page.locator('[data-testid="dept-tree"]'), '华中分公司', 'child department in the tree')
      await page.locator('[data-testid="dept-tree"]').getByText('华中分公司').click()
      await page.locator('[data-testid="record-form"]').waitFor()
      await ctx.shot(page, 'admin-departments')

      await page.goto(ctx.base + '/system/users')
      await expectText(page.locator('[data-testid="record-table"]'), ctx.admin.username, 'admin listed')
      await ctx.shot(page, 'admin-users')

      await page.goto(ctx.base + '/system/roles')
      await page.locator('[data-testid="edit-permissions"]:visible').first().click()
      await page.locator('[data-testid="perm-matrix"]').waitFor()
      await ctx.shot(page, 'admin-role-matrix')

      await page.goto(ctx.base + '/system/login-log')
      await expectText(page.locator('[data-testid="login-log"]'), ctx.admin.username, 'own sign-in logged')
      await ctx.shot(page, 'admin-login-log')

      await page.goto(ctx.base + '/system/audit')
      await expectText(page.locator('[data-testid="audit-log"]'), '华中分公司', 'operation logged')
      await ctx.shot(page, 'admin-audit-log')

      await page.goto(ctx.base + '/system/settings')
      await page.locator('.gx-settings').waitFor()
      await ctx.shot(page, 'admin-settings')

      await page.goto(ctx.base + '/system/dictionaries')
      await ctx.shot(page, 'admin-dictionaries')

      await page.goto(ctx.base + '/account/security')
      await ctx.shot(page, 'account-security')
      assert((await page.locator('.el-alert--error').count()) === 0, 'no error on the security page')
    },
  },
  {
    name: 'print view of a record',
    async run(ctx) {
      const c = await ctx.apiJson('POST', '/records/customer', { name: '打印测试客户', registered_capital: 500000 })
      const page = await ctx.newPage()
      await page.goto(`${ctx.base}/print/customer/${c.body.data.id}`)
      await expectText(page.locator('.gx-print-table'), '¥5,000.00', 'money on print view')
      await ctx.shot(page, 'print')
    },
  },
]
