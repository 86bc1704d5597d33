/* global document, window */
import { assert, expectText, fillField, selectOption, uniq } from './lib.mjs'

export const tests = [
  {
    name: 'shell: workbench and menu',
    async run(ctx) {
      const page = await ctx.newPage()
      await page.goto(ctx.base + '/')
      await page.waitForURL(/\/workbench/)
      await page.locator('[data-testid="side-menu"]').waitFor()
      await expectText(page.locator('[data-testid="menu-customers"]'), '客户', 'customers group')
      await expectText(page.locator('[data-testid="menu-system"]'), '系统', 'system group')
      await ctx.shot(page, 'workbench')
    },
  },
  {
    name: 'records: create with server field errors, then edit, history, delete and restore',
    async run(ctx) {
      const page = await ctx.newPage()
      const name = await uniq('中平能源')
      await page.goto(ctx.base + '/records/customer/new')
      await page.locator('[data-testid="record-form"]').waitFor()
      // Bad input: the server's field errors appear next to the fields, what was typed stays.
      await fillField(page, 'email', 'not-an-email')
      await fillField(page, 'phone', '123')
      await page.locator('[data-testid="form-submit"]').click()
      await expectText(page.locator('[data-field="email"] .el-form-item__error'), '邮箱', 'email error')
      await expectText(page.locator('[data-field="name"] .el-form-item__error'), '客户名称', 'name required error')
      assert((await page.locator('[data-field="email"] input').inputValue()) === 'not-an-email', 'typed value kept')
      await ctx.shot(page, 'form-errors')

      await fillField(page, 'name', name)
      await fillField(page, 'email', 'info@zpny.example.com')
      await fillField(page, 'phone', '13812345678')
      await selectOption(page, 'level', 'A类')
      await fillField(page, 'registered_capital', '1234.56')
      await page.locator('[data-testid="form-submit"]').click()
      await page.waitForURL(/\/records\/customer\/[0-9a-f-]{36}$/)
      await expectText(page.locator('[data-testid="record-title"]'), name, 'detail title')
      await expectText(page.locator('[data-field="registered_capital"]'), '1,234.56', 'money shown in yuan')
      await expectText(page.locator('[data-field="number"]'), 'CM', 'number generated')
      await ctx.shot(page, 'detail')

      // Workflow button from the state machine.
      await page.locator('[data-testid="transition-sign"]').click()
      await page.locator('.el-message-box button.el-button--primary').click()
      await expectText(page.locator('.el-tag'), '正式', 'status after sign')

      // Edit → history shows old → new.
      await page.locator('[data-testid="edit-record"]').click()
      await page.locator('[data-testid="record-form"]').waitFor()
      await fillField(page, 'name', name + '改')
      await page.locator('[data-testid="form-submit"]').click()
      await page.waitForURL(/\/records\/customer\/[0-9a-f-]{36}$/)
      await expectText(page.locator('[data-testid="record-title"]'), name + '改', 'renamed')
      await page.getByRole('tab', { name: '变更历史' }).click()
      await expectText(page.locator('[data-testid="history-table"]'), name + '改', 'history new value')
      await ctx.shot(page, 'history')

      // Delete → recycle bin → restore.
      await page.locator('[data-testid="delete-record"]').click()
      await page.locator('.el-message-box button.el-button--primary').click()
      await page.waitForURL(/\/records\/customer$/)
      await page.goto(ctx.base + '/records/customer/recycle-bin')
      const row = page.locator('[data-testid="recycle-table"] tr', { hasText: name + '改' })
      await row.waitFor()
      await ctx.shot(page, 'recycle-bin')
      await row.locator('[data-testid="restore"]').click()
      await row.waitFor({ state: 'detached' })
      await page.goto(ctx.base + '/records/customer')
      await expectText(page.locator('[data-testid="record-table"]'), name + '改', 'restored record listed')
    },
  },
  {
    name: 'records: optimistic concurrency conflict offers a reload',
    async run(ctx) {
      const created = await ctx.apiJson('POST', '/records/customer', { name: await uniq('冲突测试') })
      const id = created.body.data.id
      const page = await ctx.newPage()
      await page.goto(`${ctx.base}/records/customer/${id}/edit`)
      await page.locator('[data-testid="record-form"]').waitFor()
      await page.waitForTimeout(300)
      await ctx.apiJson('PATCH', `/records/customer/${id}`, { version: 1, remark: 'changed elsewhere' })
      await fillField(page, 'address', '平顶山市')
      await page.locator('[data-testid="form-submit"]').click()
      await page.locator('[data-testid="conflict"]').waitFor()
      await ctx.shot(page, 'conflict')
      await page.locator('[data-testid="conflict-reload"]').click()
      await page.locator('[data-testid="conflict"]').waitFor({ state: 'detached' })
    },
  },
  {
    name: 'records: a network failure or a 5xx keeps what was typed',
    async run(ctx) {
      const page = await ctx.newPage()
      await page.goto(ctx.base + '/records/customer/new')
      await page.locator('[data-testid="record-form"]').waitFor()
      await fillField(page, 'name', '网络故障测试')
      await page.route('**/api/v1/records/customer', (route) => (route.request().method() === 'POST' ? route.abort('connectionrefused') : route.continue()))
      await page.locator('[data-testid="form-submit"]').click()
      await expectText(page.locator('[data-testid="form-error"]'), '无法连接服务器', 'network message')
      assert((await page.locator('[data-field="name"] input').inputValue()) === '网络故障测试', 'typed value kept after network failure')
      await page.unroute('**/api/v1/records/customer')
      await page.route('**/api/v1/records/customer', (route) =>
        route.request().method() === 'POST'
          ? route.fulfill({ status: 503, contentType: 'text/html', body: '<html>maintenance</html>' })
          : route.continue(),
      )
      await page.locator('[data-testid="form-submit"]').click()
      await expectText(page.locator('[data-testid="form-error"]'), '服务器出错了', '5xx message')
      await ctx.shot(page, 'form-server-error')
      await page.unroute('**/api/v1/records/customer')
      await page.locator('[data-testid="form-submit"]').click()
      await page.waitForURL(/\/records\/customer\/[0-9a-f-]{36}$/)
    },
  },
  {
    name: 'list: bulk edit and bulk delete',
    async run(ctx) {
      const tag = await uniq('批量')
      for (const n of ['一', '二']) await ctx.apiJson('POST', '/records/customer', { name: `${tag}${n}` })
      const page = await ctx.newPage()
      await page.goto(ctx.base + '/records/customer')
      await page.locator('[data-testid="quick-search"]').fill(tag)
      await page.locator('[data-testid="search-btn"]').click()
      const table = page.locator('[data-testid="record-table"]')
      await expectText(table, `${tag}二`, 'both listed')
      await table.locator('thead .el-checkbox').first().click()
      await page.locator('[data-testid="bulk-edit"]').click()
      await page.locator('[data-testid="bulk-field"] .el-select__wrapper').click()
      await page.locator('.el-select-dropdown__item:visible').filter({ hasText: /^客户等级$/ }).click()
      await page.locator('.el-dialog:visible .el-form-item').nth(1).locator('.el-select__wrapper').click()
      await page.locator('.el-select-dropdown__item:visible').filter({ hasText: 'B类' }).click()
      await page.locator('[data-testid="bulk-submit"]').click()
      await expectText(table, 'B类', 'bulk-updated level')
      await ctx.shot(page, 'bulk-edit')
      await table.locator('thead .el-checkbox').first().click()
      await page.locator('[data-testid="bulk-delete"]').click()
      await page.locator('.el-message-box button.el-button--primary').click()
      await expectText(table, '暂无数据', 'both deleted')
    },
  },
  {
    name: 'records: related list and relation lookup',
    async run(ctx) {
      const cname = await uniq('关联客户')
      const c = await ctx.apiJson('POST', '/records/customer', { name: cname })
      const page = await ctx.newPage()
      await page.goto(ctx.base + '/records/contact/new')
      await page.locator('[data-testid="record-form"]').waitFor()
      await fillField(page, 'name', '张三')
      await page.locator('[data-field="customer_id"] [data-testid="relation-open"]').click()
      const dlg = page.locator('[data-testid="lookup-dialog"]')
      await dlg.locator('[data-testid="lookup-search"]').fill(cname)
      await dlg.locator('[data-testid="lookup-search"]').press('Enter')
      await dlg.locator('.el-table__row', { hasText: cname }).first().dblclick()
      await ctx.shot(page, 'contact-form')
      await page.locator('[data-testid="form-submit"]').click()
      await page.waitForURL(/\/records\/contact\/[0-9a-f-]{36}$/)
      await expectText(page.locator('[data-field="customer_id"]'), cname, 'relation title shown')
      await page.goto(`${ctx.base}/records/customer/${c.body.data.id}`)
      await page.getByRole('tab', { name: '相关记录' }).click()
      await expectText(page.locator('[data-testid="related-contact"]'), '张三', 'contact in related list')
      await ctx.shot(page, 'related')
    },
  },
  {
    name: 'list: advanced search with AND/OR',
    async run(ctx) {
      const tag = await uniq('搜')
      await ctx.apiJson('POST', '/records/customer', { name: `${tag}甲`, employee_count: 10 })
      await ctx.apiJson('POST', '/records/customer', { name: `${tag}乙`, employee_count: 500 })
      const page = await ctx.newPage()
      await page.goto(ctx.base + '/records/customer')
      await page.locator('[data-testid="record-table"]').waitFor()
      await page.locator('[data-testid="toggle-advanced"]').click()
      const adv = page.locator('[data-testid="advanced-search"]')
      const addRow = async (i, fieldLabel, opLabel, value) => {
        await adv.locator('[data-testid="adv-add"]').click()
        const row = adv.locator(`[data-testid="adv-row-${i}"]`)
        await row.locator('[data-testid="adv-field"] .el-select__wrapper').click()
        await page.locator('.el-select-dropdown__item:visible').filter({ hasText: new RegExp(`^${fieldLabel}$`) }).first().click()
        await row.locator('[data-testid="adv-op"] .el-select__wrapper').click()
        await page.locator('.el-select-dropdown__item:visible').filter({ hasText: new RegExp(`^${opLabel}$`) }).first().click()
        const input = row.locator('input').last()
        await input.fill(String(value))
        await input.press('Tab')
      }
      await addRow(0, '客户名称', '包含', tag)
      await addRow(1, '员工人数', '大于', 100)
      await adv.locator('[data-testid="adv-search"]').click()
      const table = page.locator('[data-testid="record-table"]')
      await expectText(table, `${tag}乙`, 'AND result')
      await page.waitForTimeout(500)
      assert((await table.locator('.el-table__body tr', { hasText: `${tag}甲` }).count()) === 0, 'AND excludes 甲')
      await ctx.shot(page, 'advanced-search')
      // OR: both match.
      await adv.locator('[data-testid="adv-logic"] label', { hasText: 'OR' }).click()
      await adv.locator('[data-testid="adv-search"]').click()
      await expectText(table, `${tag}甲`, 'OR includes 甲')
    },
  },
  {
    name: 'admin: a custom field appears on the form and the list',
    async run(ctx) {
      const page = await ctx.newPage()
      await page.goto(ctx.base + '/system/fields')
      await page.locator('[data-testid="fields-object"]').waitFor()
      await page.locator('[data-testid="fields-object"] .el-select__wrapper').click()
      await page.locator('.el-select-dropdown__item:visible').filter({ hasText: /^客户$/ }).click()
      await page.locator('[data-testid="add-field"]').click()
      const dlg = page.locator('[data-testid="field-dialog"]')
      const key = `wx${Date.now().toString(36)}`
      await dlg.locator('[data-testid="field-key"] input').fill(key)
      await dlg.locator('[data-testid="field-label-zh"] input').fill('微信号')
      await dlg.locator('[data-testid="field-label-en"] input').fill('WeChat')
      await dlg.locator('[data-testid="field-maxlen"] input').fill('50')
      await dlg.locator('[data-testid="field-submit"]').click()
      await expectText(page.locator('[data-testid="fields-table"]'), `cf_${key}`, 'field listed')
      await ctx.shot(page, 'custom-fields')
      await page.goto(ctx.base + '/records/customer/new')
      await page.locator(`[data-field="cf_${key}"]`).waitFor()
      await fillField(page, 'name', await uniq('自定义字段客户'))
      await fillField(page, `cf_${key}`, 'wx_zpny')
      await page.locator('[data-testid="form-submit"]').click()
      await page.waitForURL(/\/records\/customer\/[0-9a-f-]{36}$/)
      await expectText(page.locator(`[data-field="cf_${key}"]`), 'wx_zpny', 'custom value on detail')
      await page.goto(ctx.base + '/records/customer')
      await page.locator('[data-testid="column-chooser"]').click()
      await page.locator(`[data-testid="col-cf_${key}"]`).click()
      await expectText(page.locator('[data-testid="record-table"] thead'), '微信号', 'custom column')
      await expectText(page.locator('[data-testid="record-table"]'), 'wx_zpny', 'custom value in list')
      await ctx.shot(page, 'list-custom-column')
    },
  },
  {
    name: 'i18n: switch to English and back',
    async run(ctx) {
      const page = await ctx.newPage()
      await page.goto(ctx.base + '/records/customer')
      await page.locator('[data-testid="record-table"]').waitFor()
      await page.locator('[data-testid="lang-switch"]').click()
      await page.locator('[data-testid="lang-en"]').click()
      await expectText(page.locator('[data-testid="menu-customers"]'), 'Customers', 'English menu')
      await expectText(page.locator('[data-testid="page-title"]'), 'Customer list', 'English title')
      await expectText(page.locator('[data-testid="record-table"] thead'), 'Name', 'English field label')
      await ctx.shot(page, 'english-list')
      await page.reload()
      await expectText(page.locator('[data-testid="menu-customers"]'), 'Customers', 'language remembered')
      await page.locator('[data-testid="lang-switch"]').click()
      await page.locator('[data-testid="lang-zh-CN"]').click()
      await expectText(page.locator('[data-testid="menu-customers"]'), '客户', 'Chinese again')
    },
  },
  {
    name: 'layout: phone width',
    async run(ctx) {
      const page = await ctx.newPage()
      await page.setViewportSize({ width: 390, height: 844 })
      await page.goto(ctx.base + '/records/customer')
      await page.locator('[data-testid="record-table"]').waitFor()
      assert(!(await page.locator('.gx-aside').isVisible().catch(() => false)), 'no fixed sidebar on a phone')
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
      assert(overflow <= 1, `no horizontal page overflow (${overflow}px)`)
      await ctx.shot(page, 'phone-list')
      await page.locator('[data-testid="menu-toggle"]').click()
      await page.locator('.gx-mobile-drawer [data-testid="side-menu"]').waitFor()
      await ctx.shot(page, 'phone-menu')
      await page.locator('.gx-mobile-drawer [data-testid="menu-workbench"]').click()
      await page.waitForURL(/\/workbench/)
      await ctx.shot(page, 'phone-workbench')
    },
  },
]
