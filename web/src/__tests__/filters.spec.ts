import { describe, expect, it } from 'vitest'
import { andAll, filterToGroup, groupToFilter, operatorsFor, rowComplete } from '@/utils/filters'
import type { FieldDef } from '@/api/types'

const f = (key: string, type: FieldDef['type']): FieldDef => ({
  key,
  type,
  label: { zh: key, en: key },
  required: false,
  read_only: false,
  unique: false,
  filterable: true,
  sortable: true,
  custom: false,
  system: false,
})
const fields = [f('name', 'text'), f('registered_capital', 'money'), f('employee_count', 'integer'), f('level', 'select')]

describe('advanced search → filter grammar', () => {
  it('one row is a bare condition', () => {
    expect(groupToFilter({ logic: 'and', rows: [{ field: 'name', op: 'contains', value: '中平' }] }, fields)).toEqual({
      field: 'name',
      op: 'contains',
      value: '中平',
    })
  })
  it('several rows use the chosen logic, money in fen, numbers parsed', () => {
    const node = groupToFilter(
      {
        logic: 'or',
        rows: [
          { field: 'registered_capital', op: 'gte', value: 1000.5 },
          { field: 'employee_count', op: 'between', value: ['10', '20'] },
          { field: 'level', op: 'in', value: ['A', 'B'] },
          { field: 'name', op: 'in', value: 'a, b，c' },
          { field: 'name', op: 'is_empty', value: false },
        ],
      },
      fields,
    )
    expect(node).toEqual({
      or: [
        { field: 'registered_capital', op: 'gte', value: 100050 },
        { field: 'employee_count', op: 'between', value: [10, 20] },
        { field: 'level', op: 'in', value: ['A', 'B'] },
        { field: 'name', op: 'in', value: ['a', 'b', 'c'] },
        { field: 'name', op: 'is_empty', value: false },
      ],
    })
  })
  it('incomplete rows are ignored', () => {
    expect(rowComplete({ field: 'name', op: 'eq', value: '' })).toBe(false)
    expect(rowComplete({ field: 'name', op: 'between', value: [1, null] })).toBe(false)
    expect(groupToFilter({ logic: 'and', rows: [{ field: 'name', op: 'eq', value: null }] }, fields)).toBeNull()
  })
  it('andAll drops empties', () => {
    expect(andAll(null, undefined)).toBeNull()
    const c = { field: 'a', op: 'eq', value: 1 }
    expect(andAll(c, null)).toEqual(c)
    expect(andAll(c, c)).toEqual({ and: [c, c] })
  })
  it('operators come from the server, else from the type', () => {
    expect(operatorsFor(fields[0] as FieldDef, { name: ['eq'] })).toEqual(['eq'])
    expect(operatorsFor(fields[3] as FieldDef)).toEqual(['eq', 'ne', 'in', 'is_empty'])
  })
})

describe('saved filter → advanced search rows', () => {
  it('a group of conditions round-trips, money back in yuan', () => {
    const group = {
      logic: 'or' as const,
      rows: [
        { field: 'name', op: 'contains', value: '中平' },
        { field: 'registered_capital', op: 'between', value: [1.5, 20] },
        { field: 'level', op: 'is_empty', value: false },
      ],
    }
    const node = groupToFilter(group, fields)
    expect(filterToGroup(node, fields)).toEqual(group)
  })
  it('no filter is no rows; nested groups and hidden fields cannot be shown as rows', () => {
    expect(filterToGroup(null, fields)).toEqual({ logic: 'and', rows: [] })
    expect(filterToGroup({ and: [{ or: [{ field: 'name', op: 'eq', value: 'x' }] }] }, fields)).toBeNull()
    expect(filterToGroup({ field: 'credit_code', op: 'eq', value: 'x' }, fields)).toBeNull()
  })
})
