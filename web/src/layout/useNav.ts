import { computed } from 'vue'
import { useAuthStore } from '@/stores/auth'
import { useMetaStore } from '@/stores/meta'
import { useAppStore } from '@/stores/app'
import { buildNav, type NavGroup } from './nav'

export function useNav() {
  const auth = useAuthStore()
  const meta = useMetaStore()
  const app = useAppStore()
  const groups = computed<NavGroup[]>(() =>
    buildNav(meta.objects, { can: auth.can, isAdmin: auth.isAdmin }, (o) => app.tl(o.label)),
  )
  return { groups }
}
