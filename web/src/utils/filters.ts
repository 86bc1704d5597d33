// Advanced-search rows → the server's filter grammar, and back.
import type { FieldDef, FilterCond, FilterNode } from '@/api/types'

export interface ConditionRow {
  field: string
  op: string
  value: unknown
}

export interface ConditionGroup {
  logic: 'and' | 'or'
  rows: ConditionRow[]
}

/** Operators each field type accepts (fallback when the server sends none for a field). */
export const OPERATORS_BY_TYPE: Record<string, string[]> = {
  text: ['eq', 'ne', 'in', 'contains', 'starts_with', 'is_empty'],
  long_text: ['eq', 'ne', 'in', 'contains', 'starts_with', 'is_empty'],
  email: ['eq', 'ne', 'in', 'contains', 'starts_with', 'is_empty'],
  phone: ['eq', 'ne', 'in', 'contains', 'starts_with', 'is_empty'],
  url: ['eq', 'ne', 'in', 'contains', 'starts_with', 'is_empty'],
  integer: ['eq', 'ne', 'lt', 'lte', 'gt', 'gte', 'between', 'in', 'is_empty'],
  decimal: ['eq', 'ne', 'lt', 'lte', 'gt', 'gte', 'between', 'in', 'is_empty'],
  money: ['eq', 'ne', 'lt', 'lte', 'gt', 'gte', 'between', 'in', 'is_empty'],
  date: ['eq', 'ne', 'lt', 'lte', 'gt', 'gte', 'between', 'in', 'is_empty'],
  date_time: ['eq', 'ne', 'lt', 'lte', 'gt', 'gte', 'between', 'in', 'is_empty'],
  boolean: ['eq', 'ne', 'is_empty'],
  select: ['eq', 'ne', 'in', 'is_empty'],
  state: ['eq', 'ne', 'in', 'is_empty'],
  relation: ['eq', 'ne', 'in', 'is_empty'],
  multi_relation: ['contains', 'is_empty'],
  multi_select: ['contains', 'is_empty'],
  attachments: ['is_empty'],
  json: ['is_empty'],
}

export function operatorsFor(field: FieldDef, serverOps?: Record<string, string[]>): string[] {
  return serverOps?.[field.key] ?? OPERATORS_BY_TYPE[field.type] ?? ['eq']
}

function isBlank(v: unknown): boolean {
  return v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0)
}

/** Converts the UI value of one row to the JSON value the server expects (money in fen, etc). */
export function rowValue(field: FieldDef | undefined, op: string, value: unknown): unknown {
  if (op === 'is_empty') return value !== false
  const one = (v: unknown): unknown => {
    if (!field) return v
    if (field.type === 'money' && typeof v === 'number') return Math.round(v * 100)
    if ((field.type === 'integer' || field.type === 'decimal') && typeof v === 'string' && v.trim() !== '') {
      const n = Number(v)
      return Number.isNaN(n) ? v : n
    }
    return v
  }
  if (op === 'between') {
    const arr = Array.isArray(value) ? value : []
    return [one(arr[0]), one(arr[1])]
  }
  if (op === 'in') {
    const arr = Array.isArray(value)
      ? value
      : String(value ?? '')
          .split(/[,，\s]+/)
          .filter(Boolean)
    return arr.map(one)
  }
  return one(value)
}

export function rowComplete(row: ConditionRow): boolean {
  if (!row.field || !row.op) return false
  if (row.op === 'is_empty') return true
  if (row.op === 'between') {
    return Array.isArray(row.value) && !isBlank(row.value[0]) && !isBlank(row.value[1])
  }
  return !isBlank(row.value)
}

export function groupToFilter(group: ConditionGroup, fields: FieldDef[]): FilterNode | null {
  const conds: FilterCond[] = group.rows.filter(rowComplete).map((r) => ({
    field: r.field,
    op: r.op,
    value: rowValue(
      fields.find((f) => f.key === r.field),
      r.op,
      r.value,
    ),
  }))
  if (conds.length === 0) return null
  if (conds.length === 1) return conds[0] as FilterCond
  return group.logic === 'or' ? { or: conds } : { and: conds }
}

/** Combines several filters with AND, dropping empty ones. */
export function andAll(...nodes: (FilterNode | null | undefined)[]): FilterNode | null {
  const list = nodes.filter((n): n is FilterNode => !!n)
  if (list.length === 0) return null
  if (list.length === 1) return list[0] as FilterNode
  return { and: list }
}

/** The UI value of one condition (the inverse of `rowValue`: money back to yuan). */
function uiValue(field: FieldDef | undefined, op: string, value: unknown): unknown {
  if (op === 'is_empty') return value !== false
  const one = (v: unknown): unknown => (field?.type === 'money' && typeof v === 'number' ? v / 100 : v)
  return Array.isArray(value) ? value.map(one) : one(value)
}

/**
 * A saved filter back into advanced-search rows, when it has their shape (one condition, or one
 * AND/OR group of conditions on fields the caller sees); otherwise `null`, and the caller applies
 * the filter as it is.
 */
export function filterToGroup(node: FilterNode | null, fields: FieldDef[]): ConditionGroup | null {
  if (!node) return { logic: 'and', rows: [] }
  const toRow = (n: FilterNode): ConditionRow | null => {
    if (!('field' in n)) return null
    const field = fields.find((f) => f.key === n.field)
    if (!field) return null
    return { field: n.field, op: n.op, value: uiValue(field, n.op, n.value) }
  }
  if ('field' in node) {
    const row = toRow(node)
    return row ? { logic: 'and', rows: [row] } : null
  }
  const logic: 'and' | 'or' = 'and' in node ? 'and' : 'or'
  const items = 'and' in node ? node.and : node.or
  const rows = items.map(toRow)
  if (rows.some((r) => r === null)) return null
  return { logic, rows: rows as ConditionRow[] }
}
