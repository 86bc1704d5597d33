import { describe, expect, it } from 'vitest'
import { buildNav } from '@/layout/nav'
import type { ObjectDef } from '@/api/types'

const o = (key: string, module: string | null): ObjectDef => ({
  key,
  label: { zh: key, en: key },
  fields: [],
  title_field: 'id',
  search_fields: [],
  default_sort: [],
  operators: {},
  module,
})

describe('menu from server metadata', () => {
  const objects = [o('customer', 'customers'), o('contact', 'customers'), o('opportunity', 'sales'), o('gadget', null), o('user', 'system'), o('role', 'system'), o('warehouse_bin', 'system')]

  it('puts each object in the group the server names, unknown ones under Other', () => {
    const nav = buildNav(objects, { can: () => true, isAdmin: true }, (x) => x.key)
    const keys = Object.fromEntries(nav.map((g) => [g.key, g.items.map((i) => i.key)]))
    expect(keys.customers).toEqual(['customer', 'contact', 'customer-pool', 'customer-merges'])
    expect(keys.analytics).toEqual(['customer-stats'])
    expect(keys.sales).toEqual(['opportunity'])
    expect(keys.other).toEqual(['gadget'])
    expect(keys.system?.slice(0, 3)).toEqual(['users', 'roles', 'warehouse_bin'])
  })

  it('shows only what the caller may read', () => {
    const can = (object: string, action: string) => action === 'read' && object === 'contact'
    const nav = buildNav(objects, { can, isAdmin: false }, (x) => x.key)
    expect(nav.map((g) => g.key)).toEqual(['workbench', 'customers'])
    expect(nav[1]?.items.map((i) => i.key)).toEqual(['contact'])
  })
})
