import { defineStore } from 'pinia'
import { computed, ref, watch } from 'vue'
import { i18n, type Locale } from '@/locales'
import { setApiLanguage } from '@/api/http'
import { load, save } from '@/utils/storage'
import type { I18nText } from '@/api/types'

export const PAGE_SIZES = [10, 20, 50, 100]

export const useAppStore = defineStore('app', () => {
  const locale = ref<Locale>(i18n.global.locale.value as Locale)
  const sidebarCollapsed = ref(load<boolean>('sidebarCollapsed', false))
  const mobileMenuOpen = ref(false)
  const width = ref(typeof window === 'undefined' ? 1280 : window.innerWidth)
  /** Rows per page for every list (seed M9 F-M9-16: one setting for all lists). */
  const pageSize = ref(load<number>('pageSize', 20))
  /** Title of the record the page shows, for the breadcrumbs. */
  const crumbTitle = ref('')

  const isMobile = computed(() => width.value < 768)

  function applyLocale(l: Locale) {
    i18n.global.locale.value = l
    setApiLanguage(l)
    if (typeof document !== 'undefined') document.documentElement.lang = l
  }
  applyLocale(locale.value)

  function setLocale(l: Locale) {
    locale.value = l
    save('locale', l)
    applyLocale(l)
  }

  function setPageSize(n: number) {
    pageSize.value = n
    save('pageSize', n)
  }

  watch(sidebarCollapsed, (v) => save('sidebarCollapsed', v))

  if (typeof window !== 'undefined') {
    window.addEventListener('resize', () => {
      width.value = window.innerWidth
    })
  }

  /** Picks the label for the UI language. */
  function tl(text: I18nText | null | undefined): string {
    if (!text) return ''
    return locale.value === 'en' ? text.en || text.zh : text.zh || text.en
  }

  return { crumbTitle, locale, setLocale, sidebarCollapsed, mobileMenuOpen, isMobile, width, pageSize, setPageSize, tl }
})
