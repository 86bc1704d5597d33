import { createRouter, createWebHistory, type RouteLocationNormalized, type RouteRecordRaw } from 'vue-router'
import { useAuthStore } from '@/stores/auth'
import { useMetaStore } from '@/stores/meta'
import { i18n } from '@/locales'

declare module 'vue-router' {
  interface RouteMeta {
    /** Reachable without signing in. */
    public?: boolean
    /** i18n key of the page title (breadcrumb, document title). */
    titleKey?: string
    /** Needs administrator rights. */
    admin?: boolean
    /** Needs this [object, action] permission. */
    perm?: [string, string]
    /** The group the page belongs to (breadcrumbs). */
    group?: string
  }
}

const Layout = () => import('@/layout/AppLayout.vue')

const routes: RouteRecordRaw[] = [
  { path: '/login', component: () => import('@/modules/auth/LoginPage.vue'), meta: { public: true, titleKey: 'auth.title' } },
  { path: '/register', component: () => import('@/modules/auth/RegisterPage.vue'), meta: { public: true, titleKey: 'auth.registerTitle' } },
  { path: '/forgot-password', component: () => import('@/modules/auth/ForgotPage.vue'), meta: { public: true, titleKey: 'auth.forgotTitle' } },
  { path: '/reset-password', component: () => import('@/modules/auth/ResetPage.vue'), meta: { public: true, titleKey: 'auth.resetTitle' } },
  { path: '/verify-email', component: () => import('@/modules/auth/VerifyEmailPage.vue'), meta: { public: true, titleKey: 'auth.verifyTitle' } },
  { path: '/print/:object/:id', name: 'record-print', component: () => import('@/modules/records/PrintPage.vue'), props: true },
  {
    path: '/',
    component: Layout,
    redirect: '/workbench',
    children: [
      { path: 'workbench', name: 'workbench', component: () => import('@/modules/workbench/WorkbenchPage.vue'), meta: { titleKey: 'nav.workbench' } },
      { path: 'records/:object', name: 'record-list', component: () => import('@/modules/records/RecordListPage.vue'), props: true },
      { path: 'customers/pool', component: () => import('@/modules/customers/PoolPage.vue'), meta: { titleKey: 'nav.customerPool', perm: ['customer', 'read'] } },
      { path: 'customers/merges', component: () => import('@/modules/customers/MergesPage.vue'), meta: { titleKey: 'nav.customerMerges', perm: ['customer', 'read'] } },
      { path: 'customers/:id/360', name: 'customer-360', component: () => import('@/modules/customers/Customer360Page.vue'), props: true, meta: { titleKey: 'customers.c360.title', perm: ['customer', 'read'] } },
      { path: 'reports/customers', component: () => import('@/modules/customers/CustomerReportPage.vue'), meta: { titleKey: 'nav.customerStats', group: 'analytics', perm: ['customer', 'read'] } },
      { path: 'records/:object/import', name: 'record-import', component: () => import('@/modules/customers/ImportPage.vue'), props: true },
      { path: 'records/:object/new', name: 'record-new', component: () => import('@/modules/records/RecordFormPage.vue'), props: true },
      { path: 'records/:object/recycle-bin', name: 'recycle-bin', component: () => import('@/modules/records/RecycleBinPage.vue'), props: true },
      { path: 'records/:object/:id', name: 'record-detail', component: () => import('@/modules/records/RecordDetailPage.vue'), props: true },
      { path: 'records/:object/:id/edit', name: 'record-edit', component: () => import('@/modules/records/RecordFormPage.vue'), props: true },
      { path: 'account/profile', component: () => import('@/modules/account/ProfilePage.vue'), meta: { titleKey: 'nav.profile' } },
      { path: 'account/password', component: () => import('@/modules/account/PasswordPage.vue'), meta: { titleKey: 'nav.password' } },
      { path: 'account/security', component: () => import('@/modules/account/SecurityPage.vue'), meta: { titleKey: 'nav.security' } },
      { path: 'system/users', component: () => import('@/modules/admin/UsersPage.vue'), meta: { titleKey: 'nav.users', group: 'system', perm: ['user', 'read'] } },
      { path: 'system/departments', component: () => import('@/modules/admin/DepartmentsPage.vue'), meta: { titleKey: 'nav.departments', group: 'system', perm: ['department', 'read'] } },
      { path: 'system/roles', component: () => import('@/modules/admin/RolesPage.vue'), meta: { titleKey: 'nav.roles', group: 'system', perm: ['role', 'read'] } },
      { path: 'system/roles/:id', component: () => import('@/modules/admin/RolePermissionsPage.vue'), props: true, meta: { titleKey: 'admin.permissions', group: 'system', perm: ['role', 'update'] } },
      { path: 'system/fields', component: () => import('@/modules/admin/CustomFieldsPage.vue'), meta: { titleKey: 'nav.customFields', group: 'system', perm: ['meta', 'manage'] } },
      { path: 'system/dictionaries', component: () => import('@/modules/admin/DictionariesPage.vue'), meta: { titleKey: 'nav.dictionaries', group: 'system', perm: ['meta', 'manage'] } },
      { path: 'system/login-log', component: () => import('@/modules/admin/LoginLogPage.vue'), meta: { titleKey: 'nav.loginLog', group: 'system', perm: ['audit', 'read'] } },
      { path: 'system/audit', component: () => import('@/modules/admin/AuditLogPage.vue'), meta: { titleKey: 'nav.auditLog', group: 'system', perm: ['audit', 'read'] } },
      { path: 'system/settings', component: () => import('@/modules/admin/SettingsPage.vue'), meta: { titleKey: 'nav.settings', group: 'system', perm: ['system', 'manage'] } },
      { path: 'forbidden', name: 'forbidden', component: () => import('@/components/ForbiddenPage.vue'), meta: { titleKey: 'common.forbidden' } },
      { path: ':pathMatch(.*)*', name: 'not-found', component: () => import('@/components/NotFoundPage.vue'), meta: { titleKey: 'common.notFound' } },
    ],
  },
]

export const router = createRouter({
  history: createWebHistory(),
  routes,
  scrollBehavior: () => ({ top: 0 }),
})

/** Where to go after signing in: only same-site paths are accepted. */
export function safeRedirect(v: unknown): string {
  const s = typeof v === 'string' ? v : ''
  return s.startsWith('/') && !s.startsWith('//') && !s.startsWith('/login') ? s : '/workbench'
}

export async function guard(to: RouteLocationNormalized) {
  const auth = useAuthStore()
  if (auth.status === 'unknown') {
    try {
      await auth.fetchMe()
    } catch {
      // Server unreachable: let the page render; it shows the error and a retry.
      return true
    }
  }
  if (to.meta.public) {
    if (to.path === '/login' && (auth.status === 'authenticated' || auth.status === 'no-auth')) {
      return safeRedirect(to.query.redirect)
    }
    return true
  }
  if (auth.status === 'anonymous') return { path: '/login', query: { redirect: to.fullPath } }
  const meta = useMetaStore()
  try {
    await meta.load()
  } catch {
    return true
  }
  if (to.meta.admin && !auth.isAdmin) return { name: 'forbidden' }
  if (to.meta.perm && !auth.can(to.meta.perm[0], to.meta.perm[1])) return { name: 'forbidden' }
  const object = typeof to.params.object === 'string' ? to.params.object : null
  if (object && meta.object(object)) {
    const action = to.name === 'record-new' ? 'create' : to.name === 'record-edit' ? 'update' : to.name === 'record-import' ? 'import' : 'read'
    if (!auth.can(object, action)) return { name: 'forbidden' }
  }
  return true
}

router.beforeEach(guard)

router.afterEach((to) => {
  const t = i18n.global.t
  const title = to.meta.titleKey ? t(to.meta.titleKey) : ''
  document.title = title ? `${title} - ${t('app.name')}` : t('app.name')
})
