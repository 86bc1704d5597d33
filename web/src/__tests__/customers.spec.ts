import { describe, expect, it } from 'vitest'
import type { FieldDef, RecordData } from '@/api/types'
import type { GrowthResult, StatsResult } from '@/api/customers'
import { conflictingFields, defaultChoice, isEmptyValue, mergeFields } from '@/modules/customers/merge'
import { barOption, growthOption, share, statRows } from '@/modules/customers/charts'
import { toCascader } from '@/utils/regions'

const f = (key: string): FieldDef => ({
  key,
  label: { zh: key, en: key },
  type: 'text',
  required: false,
  read_only: false,
  unique: false,
  filterable: true,
  sortable: true,
  custom: false,
  system: false,
})
const rec = (id: string, v: Record<string, unknown>): RecordData => ({ id, version: 1, ...v }) as RecordData

describe('merge field choice', () => {
  const fields = [f('name'), f('phone'), f('city'), f('email'), f('remark')]
  const a = rec('a', { name: '中平能源', phone: '13800000001', city: null, email: 'a@x.cn', remark: '' })
  const b = rec('b', { name: '中平能源有限公司', phone: '13800000001', city: '北京', email: null, remark: '' })
  const c = rec('c', { name: '中平能源', phone: null, city: '上海', email: 'c@x.cn', remark: null })

  it('asks only about fields the records disagree on or the target lacks', () => {
    expect(conflictingFields(fields, [a, b, c], 'a').map((x) => x.key)).toEqual(['name', 'city', 'email'])
    // b as target: phone is the same everywhere, email is empty on b so it is asked about.
    expect(conflictingFields(fields, [a, b, c], 'b').map((x) => x.key)).toEqual(['name', 'city', 'email'])
    expect(conflictingFields(fields, [a, b], 'missing')).toEqual([])
  })

  it('defaults to the target value, else the first source with one (as the server does)', () => {
    const keys = conflictingFields(fields, [a, b, c], 'a')
    expect(defaultChoice(keys, [a, b, c], 'a')).toEqual({ name: 'a', city: 'b', email: 'a' })
  })

  it('sends only the fields taken from a source', () => {
    expect(mergeFields({ name: 'a', city: 'c', email: 'a' }, 'a')).toEqual({ city: 'c' })
    expect(mergeFields({}, 'a')).toEqual({})
  })

  it('treats null, empty text and empty lists as empty', () => {
    expect([null, undefined, '', []].every(isEmptyValue)).toBe(true)
    expect([0, false, 'x', ['a']].some(isEmptyValue)).toBe(false)
  })
})

describe('statistics chart data', () => {
  const stats = (n: number): StatsResult => ({
    by: 'province',
    field: 'province',
    label: '省份',
    total: n * 2,
    groups: Array.from({ length: n }, (_, i) => ({ value: `p${i}`, label: `省${i}`, count: 2 })),
  })

  it('keeps up to ten groups and folds the rest into "other"', () => {
    expect(statRows(stats(3), '其他')).toHaveLength(3)
    const rows = statRows(stats(14), '其他')
    expect(rows).toHaveLength(10)
    expect(rows[9]).toEqual({ name: '其他', value: 10 })
    expect(rows.reduce((s, r) => s + r.value, 0)).toBe(28)
  })

  it('computes shares with one decimal and survives a zero total', () => {
    expect(share(1, 3)).toBe(33.3)
    expect(share(0, 0)).toBe(0)
  })

  it('shapes bars and the growth line from the server answer', () => {
    const bar = barOption([{ name: '广东省', value: 3 }]) as { yAxis: { data: string[] }; series: { data: number[] }[] }
    expect(bar.yAxis.data).toEqual(['广东省'])
    expect(bar.series[0]?.data).toEqual([3])
    const g: GrowthResult = {
      interval: 'month',
      from: '2026-10-01',
      to: '2026-11-30',
      base: 1,
      total: 3,
      buckets: [
        { period: '2026-10', start: '2026-10-01', count: 1, cumulative: 2 },
        { period: '2026-11', start: '2026-11-01', count: 2, cumulative: 4 },
      ],
    }
    const o = growthOption(g, { added: '新增', cumulative: '累计' }) as { xAxis: { data: string[] }; series: { data: number[] }[] }
    expect(o.xAxis.data).toEqual(['2026-10', '2026-11'])
    expect(o.series.map((s) => s.data)).toEqual([
      [1, 2],
      [2, 4],
    ])
  })
})

describe('region tree for the cascader', () => {
  it('uses names as values and drops empty child lists', () => {
    const out = toCascader([{ code: '41', name: '河南省', children: [{ code: '4104', name: '平顶山市', children: [{ code: '410402', name: '新华区' }] }, { code: '4190', name: '济源市', children: [] }] }])
    expect(out).toEqual([
      { value: '河南省', label: '河南省', children: [{ value: '平顶山市', label: '平顶山市', children: [{ value: '新华区', label: '新华区' }] }, { value: '济源市', label: '济源市' }] },
    ])
  })
})
