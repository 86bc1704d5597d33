// Customer pages of issue 5: region cascader and its errors, duplicate warning, quick search
// (Chinese substring and pinyin initials), lead conversion, import wizard, merge + undo, 360°
// page, statistics, public pool.
import { readFileSync } from 'node:fs'
import { assert, expectText, fillField, uniq } from './lib.mjs'

/** Waits for a success toast (Element Plus message). */
async function toast(page, text, msg) {
  await expectText(page.locator('.el-message--success'), text, msg)
}

export const tests = [
  {
    name: 'customers: region cascader from the server, region errors on the field',
    async run(ctx) {
      const page = await ctx.newPage()
      // A region name the table does not know (as an old record or a pasted link would carry).
      await page.goto(ctx.base + '/records/customer/new?province=' + encodeURIComponent('火星省'))
      await page.locator('[data-testid="record-form"]').waitFor()
      await fillField(page, 'name', await uniq('地区测试'))
      await page.locator('[data-testid="form-submit"]').click()
      await expectText(page.locator('[data-field="region"] .el-form-item__error'), '火星省', 'region_unknown shown on the region field')
      await ctx.shot(page, 'customer-region-error')
      // Pick 河南省 / 平顶山市 / 新华区 by typing in the cascader (the tree has every district).
      const cascader = page.locator('[data-field="region"] .el-cascader')
      await cascader.locator('.el-input__suffix, .el-icon').last().click({ force: true }).catch(() => {})
      await page.locator('[data-field="region"] .el-cascader input').first().fill('新华区')
      await page.locator('.el-cascader__suggestion-item', { hasText: '平顶山市 / 新华区' }).first().click()
      await page.keyboard.press('Escape')
      await ctx.shot(page, 'customer-region-cascader')
      await page.locator('[data-testid="form-submit"]').click()
      await page.waitForURL(/\/records\/customer\/[0-9a-f-]{36}$/)
      await expectText(page.locator('[data-field="province"]'), '河南省', 'province saved')
      await expectText(page.locator('[data-field="city"]'), '平顶山市', 'city saved')
      await expectText(page.locator('[data-field="district"]'), '新华区', 'district saved')
    },
  },
  {
    name: 'customers: duplicate warning dialog — cancel keeps the form, save anyway creates',
    async run(ctx) {
      const name = await uniq('北京中平能源')
      const first = await ctx.apiJson('POST', '/records/customer', { name: `${name}有限公司`, phone: '13912340001' })
      assert(first.status === 201 || first.status === 200, `seed customer: ${JSON.stringify(first.body)}`)
      const page = await ctx.newPage()
      await page.goto(ctx.base + '/records/customer/new')
      await page.locator('[data-testid="record-form"]').waitFor()
      await fillField(page, 'name', name)
      await fillField(page, 'phone', '13912340001')
      // Leaving the field runs the live check.
      await page.locator('[data-field="email"] input').click()
      await expectText(page.locator('[data-testid="live-duplicates"]'), name, 'live duplicate hint')
      await page.locator('[data-testid="form-submit"]').click()
      const dialog = page.locator('[data-testid="duplicate-dialog"]')
      await expectText(dialog, `${name}有限公司`, 'the match is listed')
      await expectText(dialog, '名称', 'what matched (name)')
      await expectText(dialog, '电话', 'what matched (phone)')
      await ctx.shot(page, 'customer-duplicate-dialog')
      await page.locator('[data-testid="duplicate-cancel"]').click()
      await dialog.waitFor({ state: 'hidden' })
      assert((await page.locator('[data-field="name"] input').inputValue()) === name, 'form kept after cancel')
      await page.locator('[data-testid="form-submit"]').click()
      await page.locator('[data-testid="duplicate-save-anyway"]').click()
      await page.waitForURL(/\/records\/customer\/[0-9a-f-]{36}$/)
      await expectText(page.locator('[data-testid="record-title"]'), name, 'created after confirming')
    },
  },
  {
    name: 'customers: quick search by Chinese substring and by pinyin initials',
    async run(ctx) {
      const tag = (await uniq('')).slice(-4)
      const name = `平顶山煤业集团${tag}`
      await ctx.apiJson('POST', '/records/customer', { name })
      const page = await ctx.newPage()
      await page.goto(ctx.base + '/records/customer')
      const table = page.locator('[data-testid="record-table"]')
      await table.waitFor()
      await page.locator('[data-testid="quick-search"]').fill('煤业集团' + tag)
      await page.locator('[data-testid="search-btn"]').click()
      await expectText(table, name, 'found by a Chinese substring')
      await page.locator('[data-testid="quick-search"]').fill('pdsmy')
      await page.locator('[data-testid="search-btn"]').click()
      await expectText(table, name, 'found by pinyin initials')
      await ctx.shot(page, 'customer-search-pinyin')
    },
  },
  {
    name: 'leads: conversion creates the customer',
    async run(ctx) {
      const company = await uniq('转化测试公司')
      const lead = await ctx.apiJson('POST', '/records/lead', { name: '张经理', company, mobile: '13700001234' })
      assert(lead.status === 201 || lead.status === 200, `lead: ${JSON.stringify(lead.body)}`)
      const page = await ctx.newPage()
      await page.goto(`${ctx.base}/records/lead/${lead.body.data.id}`)
      await page.locator('[data-testid="transition-convert"]').click()
      await page.locator('.el-message-box button.el-button--primary').click()
      await expectText(page.locator('.el-tag'), '已转化', 'lead converted')
      await expectText(page.locator('[data-field="converted_customer_id"]'), company, 'customer linked')
      await ctx.shot(page, 'lead-converted')
      await page.locator('[data-testid="open-converted-customer"]').click()
      await expectText(page.locator('[data-testid="record-title"]'), company, '360° page of the new customer')
      const found = await ctx.apiJson('GET', `/records/customer?q=${encodeURIComponent(company)}`)
      assert(found.body.data.some((c) => c.name === company), 'customer exists')
    },
  },
  {
    name: 'import: dry run lists bad rows with row and reason, commit with progress, error report, undo',
    async run(ctx) {
      const tag = (await uniq('')).slice(-5)
      const csv = `客户名称,联系电话,邮箱\n导入甲${tag},13800001111,a${tag}@example.com\n导入乙${tag},13800002222,not-an-email\n导入丙${tag},,c${tag}@example.com\n`
      const page = await ctx.newPage()
      await page.goto(ctx.base + '/records/customer')
      await page.locator('[data-testid="import-link"]').click()
      await page.locator('[data-testid="import-upload"]').waitFor()
      await ctx.shot(page, 'import-upload')
      await page.locator('[data-testid="import-file"]').setInputFiles({ name: '客户.csv', mimeType: 'text/csv', buffer: Buffer.from(csv, 'utf8') })
      await page.locator('[data-testid="import-mapping"]').waitFor()
      await ctx.shot(page, 'import-mapping')
      await page.locator('[data-testid="import-dry-run"]').click()
      await page.locator('[data-testid="import-check"]').waitFor()
      await expectText(page.locator('[data-testid="dry-failed"]'), '1', 'one bad row')
      const errRow = page.locator('[data-testid="dry-errors"] tr', { hasText: 'not-an-email' })
      await errRow.waitFor()
      await expectText(errRow, '3', 'row number')
      await expectText(errRow, '邮箱', 'column / reason')
      await ctx.shot(page, 'import-dry-run')
      const [report] = await Promise.all([page.waitForEvent('download'), page.locator('[data-testid="dry-error-report"]').click()])
      const bytes = readFileSync(await report.path())
      assert(bytes.subarray(0, 2).toString() === 'PK', 'error report is an xlsx')
      await page.locator('[data-testid="import-commit"]').click()
      await page.locator('[data-testid="import-done"]').waitFor({ timeout: 30000 })
      await expectText(page.locator('[data-testid="import-done"]'), '新建 2', 'two rows created')
      await ctx.shot(page, 'import-done')
      const listed = await ctx.apiJson('GET', `/records/customer?q=${encodeURIComponent('导入甲' + tag)}`)
      assert(listed.body.data.length === 1, 'imported customer exists')
      await page.locator('[data-testid="import-undo"]').click()
      await expectText(page.locator('[data-testid="import-undo-result"]'), '2', 'undo moved two to the recycle bin')
      const after = await ctx.apiJson('GET', `/records/customer?q=${encodeURIComponent('导入甲' + tag)}`)
      assert(after.body.data.length === 0, 'undo removed the imported customer')
    },
  },
  {
    name: 'customers: merge two customers from the list, then undo on the merges page',
    async run(ctx) {
      const tag = (await uniq('')).slice(-5)
      const a = await ctx.apiJson('POST', '/records/customer', { name: `合并甲${tag}`, phone: '13600001111' })
      const b = await ctx.apiJson('POST', '/records/customer?confirm_duplicates=true', { name: `合并乙${tag}`, email: `b${tag}@example.com`, city: '北京市', province: '北京市' })
      assert(a.status < 300 && b.status < 300, `seed: ${JSON.stringify([a.body, b.body])}`)
      await ctx.apiJson('POST', '/records/contact', { customer_id: b.body.data.id, name: `乙的联系人${tag}` })
      const page = await ctx.newPage()
      await page.goto(ctx.base + '/records/customer')
      await page.locator('[data-testid="quick-search"]').fill(tag)
      await page.locator('[data-testid="search-btn"]').click()
      const table = page.locator('[data-testid="record-table"]')
      for (const n of [`合并甲${tag}`, `合并乙${tag}`]) {
        await table.locator('tr', { hasText: n }).locator('.el-checkbox').first().click()
      }
      await page.locator('[data-testid="merge-selected"]').click()
      const dialog = page.locator('[data-testid="merge-dialog"]')
      await dialog.waitFor()
      await page.locator(`[data-testid="merge-target-${a.body.data.id}"]`).click()
      // Keep the name of 甲, take the email of 乙 (filled automatically as 甲 has none).
      await expectText(page.locator('[data-testid="merge-fields"]'), `b${tag}@example.com`, 'email offered')
      await ctx.shot(page, 'customer-merge-dialog')
      await page.locator('[data-testid="merge-confirm"]').click()
      await toast(page, '已合并', 'merged')
      const merged = await ctx.apiJson('GET', `/records/customer/${a.body.data.id}`)
      assert(merged.body.data.email === `b${tag}@example.com`, 'target took the email')
      const contacts = await ctx.apiJson('GET', `/records/contact?filter=${encodeURIComponent(JSON.stringify({ field: 'customer_id', op: 'eq', value: a.body.data.id }))}`)
      assert(contacts.body.data.length === 1, 'contact moved to the target')

      await page.goto(ctx.base + '/customers/merges')
      const row = page.locator('[data-testid="merges-table"] tr', { hasText: `合并甲${tag}` }).first()
      await expectText(row, `合并乙${tag}`, 'source listed')
      await ctx.shot(page, 'customer-merges')
      await row.locator('[data-testid="merge-undo"]').click()
      await page.locator('.el-message-box button.el-button--primary').click()
      await toast(page, '已撤销', 'undone')
      await expectText(row, '已撤销', 'status undone')
      const back = await ctx.apiJson('GET', `/records/customer/${b.body.data.id}`)
      assert(back.status === 200, 'source restored')
    },
  },
  {
    name: 'customers: undo refused after a later change shows the reasons',
    async run(ctx) {
      const tag = (await uniq('')).slice(-5)
      const a = await ctx.apiJson('POST', '/records/customer', { name: `撤销冲突甲${tag}` })
      const b = await ctx.apiJson('POST', '/records/customer?confirm_duplicates=true', { name: `撤销冲突乙${tag}`, address: '平顶山市新华区' })
      const m = await ctx.apiJson('POST', '/customers/merge', { target_id: a.body.data.id, source_ids: [b.body.data.id], fields: {} })
      assert(m.status === 200, `merge: ${JSON.stringify(m.body)}`)
      const target = await ctx.apiJson('GET', `/records/customer/${a.body.data.id}`)
      await ctx.apiJson('PATCH', `/records/customer/${a.body.data.id}`, { address: '改过的地址', version: target.body.data.version })
      const page = await ctx.newPage()
      await page.goto(ctx.base + '/customers/merges')
      const row = page.locator('[data-testid="merges-table"] tr', { hasText: `撤销冲突甲${tag}` }).first()
      await row.locator('[data-testid="merge-undo"]').click()
      await page.locator('.el-message-box button.el-button--primary').click()
      await expectText(page.locator('[data-testid="undo-error"]'), '撤销会覆盖', 'target_field_changed explained')
      await ctx.shot(page, 'customer-merge-undo-refused')
    },
  },
  {
    name: 'customers: 360° page shows contacts and follow-ups; quick action adds a follow-up',
    async run(ctx) {
      const name = await uniq('三六零客户')
      const c = await ctx.apiJson('POST', '/records/customer', { name, province: '广东省', city: '深圳市' })
      const id = c.body.data.id
      await ctx.apiJson('POST', '/records/contact', { customer_id: id, name: '李联系', mobile: '13512345678' })
      await ctx.apiJson('POST', '/records/follow_up', { customer_id: id, kind: 'call', subject: '首次电话沟通', occurred_at: '2026-11-01T02:00:00Z', content: '介绍产品' })
      await ctx.apiJson('POST', '/records/follow_up', { customer_id: id, kind: 'visit', subject: '上门拜访', occurred_at: '2026-11-10T02:00:00Z' })
      const page = await ctx.newPage()
      await page.goto(`${ctx.base}/records/customer/${id}`)
      await page.locator('[data-testid="open-360"]').click()
      await page.waitForURL(/\/360$/)
      await expectText(page.locator('[data-testid="c360-contacts"]'), '李联系', 'contact listed')
      const items = page.locator('[data-testid="c360-follow-up"]')
      await expectText(items.first(), '上门拜访', 'newest follow-up first')
      await expectText(items.nth(1), '首次电话沟通', 'older follow-up second')
      await expectText(page.locator('[data-testid="c360-slot-orders"]'), '销售订单', 'empty slot for orders')
      await ctx.shot(page, 'customer-360')
      await page.locator('[data-testid="add-follow-up"]').click()
      const dialog = page.locator('[data-testid="c360-add-dialog"]')
      await dialog.locator('[data-field="subject"] input').fill('电话回访')
      await dialog.locator('[data-field="kind"] .el-select__wrapper').click()
      await page.locator('.el-select-dropdown__item:visible', { hasText: '电话' }).first().click()
      await dialog.locator('[data-field="occurred_at"] input').fill('2026-11-20 10:00:00')
      await dialog.locator('[data-field="occurred_at"] input').press('Enter')
      await dialog.locator('[data-testid="form-submit"]').click()
      await expectText(items.first(), '电话回访', 'new follow-up on top')
    },
  },
  {
    name: 'customers: statistics panel on the list and the report page render',
    async run(ctx) {
      await ctx.apiJson('POST', '/records/customer', { name: await uniq('统计客户'), source: 'referral', province: '河南省' })
      const page = await ctx.newPage()
      await page.goto(ctx.base + '/records/customer')
      await page.locator('[data-testid="stats-toggle"]').click()
      await page.locator('[data-testid="stats-growth"] canvas').first().waitFor()
      await page.locator('[data-testid="stats-source"] canvas').first().waitFor()
      await ctx.shot(page, 'customer-stats-panel')
      await page.goto(ctx.base + '/reports/customers')
      await page.locator('[data-testid="stats-province"] .el-table').waitFor()
      await expectText(page.locator('[data-testid="stats-province"]'), '河南省', 'province row')
      await ctx.shot(page, 'customer-stats-report')
    },
  },
  {
    name: 'customers: release to the pool with a reason, then claim from the pool page',
    async run(ctx) {
      const name = await uniq('公海客户')
      const c = await ctx.apiJson('POST', '/records/customer', { name })
      const page = await ctx.newPage()
      await page.goto(`${ctx.base}/records/customer/${c.body.data.id}`)
      await page.locator('[data-testid="release-customer"]').click()
      await page.locator('.el-message-box button.el-button--primary').click()
      await expectText(page.locator('.el-message-box__errormsg'), '原因', 'reason required')
      await page.locator('.el-message-box textarea').fill('客户暂无需求')
      await page.locator('.el-message-box button.el-button--primary').click()
      await toast(page, '已释放', 'released')
      await page.goto(ctx.base + '/customers/pool')
      await page.locator('[data-testid="pool-search"]').fill(name)
      await page.locator('[data-testid="pool-search"]').press('Enter')
      const row = page.locator('[data-testid="pool-table"] tr', { hasText: name })
      await expectText(row, '客户暂无需求', 'release reason shown')
      await ctx.shot(page, 'customer-pool')
      await row.locator('[data-testid="pool-claim"]').click()
      await toast(page, '已领取', 'claimed')
      await row.waitFor({ state: 'detached' })
    },
  },
]
