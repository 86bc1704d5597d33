// Small helpers shared by the browser tests.
export function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`)
}

export async function expectText(locator, text, msg) {
  await locator.filter({ hasText: text }).first().waitFor({ state: 'visible' }).catch(() => {
    throw new Error(`${msg ?? 'text'}: "${text}" not visible`)
  })
}

/** Fills the form item of field `key` (data-field attribute). */
export async function fillField(page, key, value) {
  const item = page.locator(`[data-testid="record-form"] [data-field="${key}"]`)
  const input = item.locator('input, textarea').first()
  await input.fill(String(value))
}

/** Picks an option of an el-select inside the form item of field `key`. */
export async function selectOption(page, key, label) {
  const item = page.locator(`[data-testid="record-form"] [data-field="${key}"]`)
  await item.locator('.el-select__wrapper').click()
  await page.locator('.el-select-dropdown__item:visible').filter({ hasText: label }).first().click()
}

export async function uniq(prefix) {
  return `${prefix}${Date.now().toString(36)}${Math.floor(Math.random() * 1000)}`
}
