import { describe, expect, it } from 'vitest'
import zh from '@/locales/zh-CN'
import en from '@/locales/en'

function keys(o: unknown, prefix = ''): string[] {
  if (typeof o !== 'object' || o === null) return [prefix]
  return Object.entries(o).flatMap(([k, v]) => keys(v, prefix ? `${prefix}.${k}` : k))
}

describe('locales', () => {
  it('zh-CN and en have exactly the same keys', () => {
    expect(keys(en).sort()).toEqual(keys(zh).sort())
  })
  it('no message is empty', () => {
    const leaves = (o: unknown): string[] =>
      typeof o === 'object' && o ? Object.values(o).flatMap(leaves) : [String(o)]
    expect(leaves(zh).filter((s) => !s.trim())).toEqual([])
    expect(leaves(en).filter((s) => !s.trim())).toEqual([])
  })
  it('placeholders match between languages', () => {
    const ph = (s: string) => (s.match(/\{\w+\}/g) ?? []).sort().join(',')
    const zhKeys = keys(zh)
    const get = (o: unknown, k: string) => k.split('.').reduce<unknown>((a, p) => (a as Record<string, unknown>)[p], o)
    for (const k of zhKeys) expect([k, ph(String(get(en, k)))]).toEqual([k, ph(String(get(zh, k)))])
  })
})
