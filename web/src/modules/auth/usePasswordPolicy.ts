import { computed, ref } from 'vue'
import { useI18n } from 'vue-i18n'
import { authApi } from '@/api/auth'
import type { AuthConfig } from '@/api/types'

/** Number of character classes (upper, lower, digit, other) in a password. */
export function passwordClasses(p: string): number {
  return [/[A-Z]/, /[a-z]/, /\d/, /[^A-Za-z0-9]/].filter((r) => r.test(p)).length
}

export function usePasswordPolicy() {
  const { t } = useI18n()
  const config = ref<AuthConfig | null>(null)
  const policy = computed(() => config.value?.password_policy ?? { min_length: 8, min_classes: 3, expiry_days: 0 })
  const hint = computed(() => {
    const p = policy.value
    const base = t('auth.policy', { min: p.min_length, classes: p.min_classes })
    return p.expiry_days ? `${base} ${t('auth.policyExpiry', { days: p.expiry_days })}` : base
  })
  async function load() {
    try {
      config.value = await authApi.config()
    } catch {
      config.value = null
    }
  }
  /** A local check before the server's (which also refuses common passwords). */
  function check(p: string): string | null {
    const pol = policy.value
    if (p.length < pol.min_length || passwordClasses(p) < pol.min_classes) {
      return t('auth.weakPassword', { min: pol.min_length, classes: pol.min_classes })
    }
    return null
  }
  return { config, policy, hint, load, check }
}
