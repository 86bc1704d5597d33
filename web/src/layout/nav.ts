// The navigation of PRODUCT.md ("Navigation"), filled from the server's objects (each names its
// menu group in `module`) and the caller's permissions. An object the server adds appears in its
// group (or under "Other") with no front-end change.
import type { Component } from 'vue'
import {
  Briefcase,
  ChatDotRound,
  Connection,
  DataAnalysis,
  Document,
  Folder,
  HomeFilled,
  Phone,
  Promotion,
  Service,
  Setting,
  User,
  Grid,
} from '@element-plus/icons-vue'
import type { ObjectDef } from '@/api/types'

export interface NavItem {
  key: string
  /** i18n key, or empty when `label` is given */
  titleKey?: string
  label?: string
  path: string
  icon?: Component
}

export interface NavGroup {
  key: string
  titleKey: string
  icon: Component
  items: NavItem[]
  /** A single-page group links directly. */
  path?: string
}

interface GroupDef {
  key: string
  icon: Component
}

/**
 * Menu groups in display order with their icons (PRODUCT.md "Navigation"). Which objects go in
 * a group is the server's business: each object names its group in `module`.
 */
export const GROUPS: GroupDef[] = [
  { key: 'customers', icon: User },
  { key: 'sales', icon: Briefcase },
  { key: 'contracts', icon: Document },
  { key: 'service', icon: Service },
  { key: 'callcenter', icon: Phone },
  { key: 'channel', icon: Connection },
  { key: 'marketing', icon: Promotion },
  { key: 'messages', icon: ChatDotRound },
  { key: 'analytics', icon: DataAnalysis },
  { key: 'documents', icon: Folder },
]

/** The server's group of administration objects (departments, users, roles). */
export const SYSTEM_MODULE = 'system'

/** Objects administered under "System" rather than listed in a business group. */
export function isSystemObject(o: ObjectDef | undefined): boolean {
  return o?.module === SYSTEM_MODULE
}

/** System objects with a page of their own; other system objects get the generic list. */
const SYSTEM_PAGES: Record<string, { key: string; titleKey: string; path: string }> = {
  user: { key: 'users', titleKey: 'nav.users', path: '/system/users' },
  department: { key: 'departments', titleKey: 'nav.departments', path: '/system/departments' },
  role: { key: 'roles', titleKey: 'nav.roles', path: '/system/roles' },
}

export interface Access {
  can(object: string, action: string): boolean
  isAdmin: boolean
}

export function buildNav(objects: ObjectDef[], access: Access, objectLabel: (o: ObjectDef) => string): NavGroup[] {
  const groups: NavGroup[] = [{ key: 'workbench', titleKey: 'nav.workbench', icon: HomeFilled, items: [], path: '/workbench' }]
  const readable = objects.filter((o) => access.can(o.key, 'read'))
  const item = (o: ObjectDef): NavItem => ({ key: o.key, label: objectLabel(o), path: `/records/${o.key}` })
  const known = new Set(GROUPS.map((g) => g.key))

  for (const g of GROUPS) {
    const items = readable.filter((o) => o.module === g.key).map(item)
    if (items.length) groups.push({ key: g.key, titleKey: `nav.${g.key}`, icon: g.icon, items })
  }
  // Customer pages beyond the generic list (issue 5): the pool and merges next to the customer
  // list, the customer statistics report under analytics.
  const customer = readable.find((o) => o.key === 'customer')
  if (customer) {
    const home = groups.find((g) => g.items.some((i) => i.key === 'customer'))
    home?.items.push({ key: 'customer-pool', titleKey: 'nav.customerPool', path: '/customers/pool' })
    if (access.can('customer', 'update')) home?.items.push({ key: 'customer-merges', titleKey: 'nav.customerMerges', path: '/customers/merges' })
    let analytics = groups.find((g) => g.key === 'analytics')
    if (!analytics) {
      analytics = { key: 'analytics', titleKey: 'nav.analytics', icon: DataAnalysis, items: [] }
      const before = groups.findIndex((g) => GROUPS.findIndex((x) => x.key === g.key) > GROUPS.findIndex((x) => x.key === 'analytics'))
      groups.splice(before < 0 ? groups.length : before, 0, analytics)
    }
    analytics.items.push({ key: 'customer-stats', titleKey: 'nav.customerStats', path: '/reports/customers' })
  }
  const other = readable.filter((o) => !isSystemObject(o) && !known.has(o.module ?? '')).map(item)
  if (other.length) groups.push({ key: 'other', titleKey: 'nav.other', icon: Grid, items: other })

  const sys: NavItem[] = []
  for (const key of ['user', 'department', 'role']) {
    const page = SYSTEM_PAGES[key]
    if (page && readable.some((o) => o.key === key && isSystemObject(o))) sys.push(page)
  }
  for (const o of readable) if (isSystemObject(o) && !SYSTEM_PAGES[o.key]) sys.push(item(o))
  // Module permissions as the server names them: meta.manage, audit.read, system.manage.
  if (access.can('meta', 'manage')) {
    sys.push({ key: 'fields', titleKey: 'nav.customFields', path: '/system/fields' })
    sys.push({ key: 'dictionaries', titleKey: 'nav.dictionaries', path: '/system/dictionaries' })
  }
  if (access.can('audit', 'read')) {
    sys.push({ key: 'login-log', titleKey: 'nav.loginLog', path: '/system/login-log' })
    sys.push({ key: 'audit', titleKey: 'nav.auditLog', path: '/system/audit' })
  }
  if (access.can('system', 'manage')) sys.push({ key: 'settings', titleKey: 'nav.settings', path: '/system/settings' })
  if (sys.length) groups.push({ key: 'system', titleKey: 'nav.system', icon: Setting, items: sys })
  return groups
}
