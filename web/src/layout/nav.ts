// The navigation of PRODUCT.md ("Navigation"), filled from the server's objects and the caller's
// permissions. An object the server adds appears in its group (or under "Other") with no
// front-end change.
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
  objects: string[]
}

/** Objects per group, in menu order. Objects not listed go to their `module` hint or "other". */
export const GROUPS: GroupDef[] = [
  { key: 'customers', icon: User, objects: ['customer', 'contact', 'lead', 'follow_up', 'activity', 'care_action', 'care', 'customer_group'] },
  { key: 'sales', icon: Briefcase, objects: ['opportunity', 'quote', 'order', 'receivable', 'invoice', 'product', 'product_category', 'price_list', 'warehouse', 'inventory'] },
  { key: 'contracts', icon: Document, objects: ['contract', 'contract_template'] },
  { key: 'service', icon: Service, objects: ['work_order', 'field_service', 'knowledge', 'survey', 'complaint'] },
  { key: 'callcenter', icon: Phone, objects: ['call', 'recording', 'qa_inspection'] },
  { key: 'channel', icon: Connection, objects: ['c_customer', 'store', 'partner', 'visit', 'promotion', 'monthly_review'] },
  { key: 'marketing', icon: Promotion, objects: ['campaign', 'event', 'registration', 'check_in'] },
  { key: 'messages', icon: ChatDotRound, objects: ['notice', 'sms', 'email'] },
  { key: 'analytics', icon: DataAnalysis, objects: ['dashboard', 'report'] },
  { key: 'documents', icon: Folder, objects: ['document', 'folder'] },
]

/** Objects that have their own administration page instead of a generic list in a group. */
export const SYSTEM_OBJECTS = ['department', 'user', 'role']

export interface Access {
  can(object: string, action: string): boolean
  isAdmin: boolean
}

export function buildNav(objects: ObjectDef[], access: Access, objectLabel: (o: ObjectDef) => string): NavGroup[] {
  const groups: NavGroup[] = [{ key: 'workbench', titleKey: 'nav.workbench', icon: HomeFilled, items: [], path: '/workbench' }]
  const byKey = new Map(objects.map((o) => [o.key, o]))
  const placed = new Set<string>(SYSTEM_OBJECTS)
  const item = (o: ObjectDef): NavItem => ({ key: o.key, label: objectLabel(o), path: `/records/${o.key}` })

  for (const g of GROUPS) {
    const items: NavItem[] = []
    for (const k of g.objects) {
      const o = byKey.get(k)
      placed.add(k)
      if (o && access.can(o.key, 'read')) items.push(item(o))
    }
    for (const o of objects) {
      if (!placed.has(o.key) && o.module === g.key && access.can(o.key, 'read')) {
        placed.add(o.key)
        items.push(item(o))
      }
    }
    if (items.length) groups.push({ key: g.key, titleKey: `nav.${g.key}`, icon: g.icon, items })
  }
  const other = objects.filter((o) => !placed.has(o.key) && access.can(o.key, 'read')).map(item)
  if (other.length) groups.push({ key: 'other', titleKey: 'nav.other', icon: Grid, items: other })

  const sys: NavItem[] = []
  if (byKey.has('user') && access.can('user', 'read')) sys.push({ key: 'users', titleKey: 'nav.users', path: '/system/users' })
  if (byKey.has('department') && access.can('department', 'read'))
    sys.push({ key: 'departments', titleKey: 'nav.departments', path: '/system/departments' })
  if (byKey.has('role') && access.can('role', 'read')) sys.push({ key: 'roles', titleKey: 'nav.roles', path: '/system/roles' })
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
