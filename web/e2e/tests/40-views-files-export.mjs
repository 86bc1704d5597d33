// Shared saved views, attachments and server-side export (issue 4 §5, issue 5 §1 and §8).
import { readFileSync } from 'node:fs'
import { assert, expectText, fillField, uniq } from './lib.mjs'

const needsAdmin = (ctx) => (ctx.hasAuth && ctx.adminCreated ? false : 'needs the identity endpoints and an administrator')

/** Creates a user with a new role; its first sign-in must change the administrator's password. */
async function userWithRole(ctx, username, role) {
  const r = await ctx.apiJson('POST', '/records/role', role)
  assert(r.status === 201, `role created: ${JSON.stringify(r.body)}`)
  const u = await ctx.apiJson('POST', '/records/user', { username, display_name: `测试${username}`, email: `${username}@example.com`, role_ids: [r.body.data.id] })
  assert(u.status === 201, `user created: ${JSON.stringify(u.body)}`)
  const p = await ctx.apiJson('POST', `/admin/users/${u.body.data.id}/password`, { password: 'Start#2026-pw' })
  assert(p.status === 204 || p.status === 200, `password set: ${JSON.stringify(p.body)}`)
}

async function signInFirstTime(ctx, page, username) {
  await page.goto(ctx.base + '/login')
  await page.locator('[data-testid="login-name"]').fill(username)
  await page.locator('[data-testid="login-password"]').fill('Start#2026-pw')
  await page.locator('[data-testid="login-submit"]').click()
  const expired = page.locator('[data-testid="expired-form"]')
  await expired.waitFor()
  const inputs = expired.locator('input[type="password"]')
  await inputs.nth(0).fill('Changed#2026-ok')
  await inputs.nth(1).fill('Changed#2026-ok')
  await expired.locator('button[type="submit"]').click()
  await page.waitForURL(/\/workbench/)
}

async function addCondition(page, i, fieldLabel, opLabel, value) {
  const adv = page.locator('[data-testid="advanced-search"]')
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

const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n')

export const tests = [
  {
    name: 'views: a view an administrator shares is seen and applied by another user',
    skip: needsAdmin,
    async run(ctx) {
      const tag = await uniq('视图')
      await ctx.apiJson('POST', '/records/customer', { name: `${tag}北京甲`, city: '北京' })
      await ctx.apiJson('POST', '/records/customer', { name: `${tag}上海乙`, city: '上海' })
      const page = await ctx.newPage()
      await page.goto(ctx.base + '/records/customer')
      await page.locator('[data-testid="record-table"]').waitFor()
      await page.locator('[data-testid="toggle-advanced"]').click()
      await addCondition(page, 0, '客户名称', '包含', tag)
      await addCondition(page, 1, '城市', '等于', '北京')
      await page.locator('[data-testid="adv-search"]').click()
      const table = page.locator('[data-testid="record-table"]')
      await expectText(table, `${tag}北京甲`, 'filtered list')
      await page.locator('[data-testid="views-btn"]').click()
      await page.locator('[data-testid="save-view"]:visible').click()
      await page.locator('[data-testid="view-name"] input').fill(`${tag}北京客户`)
      await page.locator('[data-testid="view-share-everyone"]').click()
      await ctx.shot(page, 'view-save-dialog')
      await page.locator('[data-testid="view-save"]').click()
      await page.locator('.el-message--success').waitFor()
      await page.locator('[data-testid="views-btn"]').click()
      await expectText(page.locator('.el-dropdown-menu:visible'), `${tag}北京客户`, 'own view listed')
      await expectText(page.locator('.el-dropdown-menu:visible'), '所有人', 'shared tag')
      await ctx.shot(page, 'views-menu-owner')
      await page.keyboard.press('Escape')

      // Another user sees it under "shared with me" and applies it.
      const username = `viewer${Date.now().toString(36).slice(-6)}`
      await userWithRole(ctx, username, { name: `看视图${tag}`, code: `v_${Date.now().toString(36)}`, permissions: { customer: { read: 'all' } } })
      await ctx.context.clearCookies()
      const other = await ctx.newPage()
      await signInFirstTime(ctx, other, username)
      await other.goto(ctx.base + '/records/customer')
      await other.locator('[data-testid="record-table"]').waitFor()
      await other.locator('[data-testid="views-btn"]').click()
      const menu = other.locator('.el-dropdown-menu:visible')
      await expectText(menu, '他人共享的视图', 'shared section')
      await ctx.shot(other, 'views-menu-other-user')
      await menu.locator(`[data-testid="view-${tag}北京客户"]`).click()
      const otherTable = other.locator('[data-testid="record-table"]')
      await expectText(otherTable, `${tag}北京甲`, 'view applied')
      await other.waitForTimeout(500)
      assert((await otherTable.locator('.el-table__body tr', { hasText: `${tag}上海乙` }).count()) === 0, 'the view filters out 上海')
      await ctx.shot(other, 'view-applied-other-user')
    },
  },
  {
    name: 'attachments: upload a PDF on a customer and download it; wrong or too large files are refused',
    async run(ctx) {
      const page = await ctx.newPage()
      const name = await uniq('附件客户')
      await page.goto(ctx.base + '/records/customer/new')
      await page.locator('[data-testid="record-form"]').waitFor()
      await fillField(page, 'name', name)
      const field = page.locator('[data-testid="record-form"] [data-field="attachments"]')
      await expectText(field.locator('[data-testid="upload-limits"]'), '每个不超过 10 MB', 'limits shown')
      const input = field.locator('input[type="file"]')

      // Content that is not a PDF: the server sniffs it and says so.
      await input.setInputFiles({ name: '假执照.pdf', mimeType: 'application/pdf', buffer: Buffer.from('MZ\x90\x00 this is not a pdf') })
      await expectText(field.locator('[data-testid="upload-error"]'), '不是 PDF', 'sniffed type error')
      await ctx.shot(page, 'attachment-wrong-type')
      // A type the field does not take, and a file over its limit: refused before uploading.
      await input.setInputFiles({ name: 'setup.exe', mimeType: 'application/octet-stream', buffer: Buffer.from('MZ') })
      await expectText(field.locator('[data-testid="upload-error"]'), '不接受', 'extension error')
      await input.setInputFiles({ name: '超大扫描件.pdf', mimeType: 'application/pdf', buffer: Buffer.concat([PDF, Buffer.alloc(10 * 1024 * 1024 + 1, 32)]) })
      await expectText(field.locator('[data-testid="upload-error"]'), '超过了 10 MB 的大小上限', 'size error')
      await ctx.shot(page, 'attachment-too-large')

      await input.setInputFiles({ name: '营业执照.pdf', mimeType: 'application/pdf', buffer: PDF })
      await expectText(field.locator('[data-testid="attachment-item"]'), '营业执照.pdf', 'uploaded file listed')
      assert((await field.locator('[data-testid="upload-error"]').count()) === 0, 'error cleared')
      await ctx.shot(page, 'attachment-uploaded')
      await page.locator('[data-testid="form-submit"]').click()
      await page.waitForURL(/\/records\/customer\/[0-9a-f-]{36}$/)
      const link = page.locator('[data-field="attachments"] [data-testid="attachment-link"]', { hasText: '营业执照.pdf' })
      await link.waitFor()
      await ctx.shot(page, 'attachment-detail')
      const [download] = await Promise.all([page.waitForEvent('download'), link.click()])
      assert(download.suggestedFilename() === '营业执照.pdf', `Chinese file name kept (${download.suggestedFilename()})`)
      const bytes = readFileSync(await download.path())
      assert(bytes.subarray(0, 5).toString() === '%PDF-', 'downloaded a PDF')
      assert(bytes.length === PDF.length, 'the same bytes')
    },
  },
  {
    name: 'export: the filtered customer list to xlsx through the server, with progress and a download',
    async run(ctx) {
      const tag = await uniq('导出')
      for (const n of ['甲', '乙', '丙']) await ctx.apiJson('POST', '/records/customer', { name: `${tag}${n}`, city: '郑州' })
      await ctx.apiJson('POST', '/records/customer', { name: await uniq('不导出') })
      const page = await ctx.newPage()
      await page.goto(ctx.base + '/records/customer')
      await page.locator('[data-testid="quick-search"]').fill(tag)
      await page.locator('[data-testid="search-btn"]').click()
      await expectText(page.locator('[data-testid="record-table"]'), `${tag}丙`, 'filtered list')
      await page.locator('[data-testid="export-all"]').click()
      const dlg = page.locator('[data-testid="export-dialog"]')
      await expectText(dlg, '当前筛选结果（3 条）', 'rows to export')
      await ctx.shot(page, 'export-dialog')
      await dlg.locator('[data-testid="export-start"]').click()
      const link = dlg.locator('[data-testid="export-download"]')
      await link.waitFor({ timeout: 30000 })
      await expectText(dlg, '3 条记录', 'row count')
      await ctx.shot(page, 'export-done')
      const [download] = await Promise.all([page.waitForEvent('download'), link.click()])
      assert(download.suggestedFilename().endsWith('.xlsx'), `xlsx name (${download.suggestedFilename()})`)
      const bytes = readFileSync(await download.path())
      assert(bytes.subarray(0, 2).toString() === 'PK', 'an xlsx (zip) file')
    },
  },
  {
    name: 'admin: the permission matrix lists the objects and workflow actions the server declares',
    skip: needsAdmin,
    async run(ctx) {
      const roles = await ctx.apiJson('GET', '/records/role?q=salesperson&limit=5')
      const role = roles.body.data.find((r) => r.code === 'salesperson') ?? roles.body.data[0]
      const page = await ctx.newPage()
      await page.goto(`${ctx.base}/system/roles/${role.id}`)
      await page.locator('[data-testid="perm-matrix"]').waitFor()
      await page.locator('[data-testid="perm-lead-read"]').waitFor()
      await page.locator('[data-testid="perm-customer-mark_lost"]').waitFor()
      await page.locator('[data-testid="perm-user-assign_roles"]').waitFor()
      await page.locator('[data-testid="perm-audit-read"]').waitFor()
      await expectText(page.locator('.el-table'), '客户：标记流失', 'workflow action label from the server')
      await ctx.shot(page, 'admin-role-matrix-catalogue')
    },
  },
]
