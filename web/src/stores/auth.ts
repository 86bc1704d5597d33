import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { authApi } from '@/api/auth'
import { ApiError } from '@/api/http'
import type { FieldRule, Me } from '@/api/types'
import { noAuthAllowed, NO_AUTH_ME } from '@/modules/auth/devNoAuth'

/**
 * - `unknown`: not asked yet
 * - `authenticated`: GET /me answered
 * - `anonymous`: GET /me said 401 → the login page
 * - `no-auth`: the server has no /me at all (404) and this build allows it (dev only, see devNoAuth.ts)
 */
export type AuthStatus = 'unknown' | 'authenticated' | 'anonymous' | 'no-auth'

export const useAuthStore = defineStore('auth', () => {
  const me = ref<Me | null>(null)
  const status = ref<AuthStatus>('unknown')

  const isAdmin = computed(() => status.value === 'no-auth' || !!me.value?.is_admin)
  const displayName = computed(() => me.value?.user.display_name || me.value?.user.username || '')

  async function fetchMe(): Promise<AuthStatus> {
    try {
      me.value = await authApi.me()
      status.value = 'authenticated'
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        me.value = null
        status.value = 'anonymous'
      } else if (e instanceof ApiError && e.status === 404 && noAuthAllowed()) {
        me.value = NO_AUTH_ME
        status.value = 'no-auth'
      } else {
        throw e
      }
    }
    return status.value
  }

  function setMe(m: Me) {
    me.value = m
    status.value = 'authenticated'
  }

  function clear() {
    me.value = null
    status.value = 'anonymous'
  }

  async function logout() {
    try {
      await authApi.logout()
    } finally {
      clear()
    }
  }

  /** Whether the caller may do `action` on `object` (any scope). Admins may do everything. */
  function can(object: string, action: string): boolean {
    if (isAdmin.value) return true
    const p = me.value?.permissions ?? {}
    // `*` matches any object or action (as on the server).
    const scope = p[object]?.[action] ?? p[object]?.['*'] ?? p['*']?.[action] ?? p['*']?.['*']
    return !!scope
  }

  function fieldRule(object: string, field: string): FieldRule | null {
    if (status.value === 'no-auth') return null
    return me.value?.field_rules?.[object]?.[field] ?? null
  }

  return { me, status, isAdmin, displayName, fetchMe, setMe, clear, logout, can, fieldRule }
})
