import { describe, expect, it } from 'vitest'
import {
  fenToYuan,
  formatBytes,
  formatDateTime,
  formatMoney,
  shanghaiInputToRfc3339,
  utcToShanghaiInput,
  yuanToFen,
} from '@/utils/format'

describe('money', () => {
  it('shows fen as yuan with two decimals', () => {
    expect(formatMoney({ amount: 123456, currency: 'CNY' })).toBe('¥1,234.56')
    expect(formatMoney(5)).toBe('¥0.05')
    expect(formatMoney(null)).toBe('')
  })
  it('sends yuan as integer fen without float drift', () => {
    expect(yuanToFen(0.29)).toBe(29)
    expect(yuanToFen(1234.56)).toBe(123456)
    expect(yuanToFen(null)).toBeNull()
    expect(fenToYuan(123456)).toBe(1234.56)
  })
})

describe('date_time in Asia/Shanghai', () => {
  it('shows UTC instants in Beijing time', () => {
    expect(formatDateTime('2026-11-22T01:30:00.000000Z')).toBe('2026-11-22 09:30')
    expect(formatDateTime('2026-11-22T16:30:05Z', true)).toBe('2026-11-23 00:30:05')
  })
  it('round-trips the picker value', () => {
    const wall = utcToShanghaiInput('2026-11-22T16:30:05Z')
    expect(wall).toBe('2026-11-23 00:30:05')
    expect(shanghaiInputToRfc3339(wall)).toBe('2026-11-23T00:30:05+08:00')
    expect(new Date(shanghaiInputToRfc3339(wall) as string).toISOString()).toBe('2026-11-22T16:30:05.000Z')
  })
  it('rejects garbage', () => {
    expect(shanghaiInputToRfc3339('tomorrow')).toBeNull()
    expect(formatDateTime(null)).toBe('')
  })
})

describe('sizes', () => {
  it('reads like a limit: whole units without a decimal', () => {
    expect(formatBytes(10 * 1024 * 1024)).toBe('10 MB')
    expect(formatBytes(1536)).toBe('1.5 KB')
    expect(formatBytes(77)).toBe('77 B')
    expect(formatBytes('x')).toBe('')
  })
})
