// Plain-text rendering of values (CSV export, print view, history table).
import { useI18n } from 'vue-i18n'
import type { FieldDef } from '@/api/types'
import { useMetaStore } from '@/stores/meta'
import { useAppStore } from '@/stores/app'
import { useRelationStore } from '@/stores/relations'
import { formatDateTime, formatMoney } from '@/utils/format'
import { asUserRef } from './userRef'

export function useDisplay() {
  const { t } = useI18n()
  const meta = useMetaStore()
  const app = useAppStore()
  const rel = useRelationStore()

  function option(f: FieldDef, v: unknown): string {
    const o = meta.options(f.dict, true).find((x) => x.value === v)
    return o ? app.tl(o.label) : String(v)
  }

  function text(field: FieldDef | undefined, v: unknown, object?: string): string {
    if (v === null || v === undefined || v === '') return ''
    if (!field) return typeof v === 'object' ? JSON.stringify(v) : String(v)
    const f = asUserRef(field, !!meta.object('user') && v !== 'system')
    if (f !== field && typeof v === 'string') rel.ensure('user', [v])
    switch (f.type) {
      case 'money':
        return formatMoney(v, app.locale)
      case 'date_time':
        return formatDateTime(v)
      case 'boolean':
        return v === true ? t('common.yes') : t('common.no')
      case 'select':
        return option(f, v)
      case 'multi_select':
        return Array.isArray(v) ? v.map((x) => option(f, x)).join('、') : String(v)
      case 'relation':
        return f.object ? (rel.title(f.object, String(v)) ?? String(v)) : String(v)
      case 'multi_relation':
        return Array.isArray(v) && f.object ? v.map((id) => rel.title(f.object as string, String(id)) ?? String(id)).join('、') : String(v)
      case 'state': {
        const s = object ? meta.object(object)?.state_machine?.states.find((x) => x.key === v) : undefined
        return s ? app.tl(s.label) : String(v)
      }
      case 'attachments':
        return Array.isArray(v) ? v.map((a) => (a as { name?: string }).name ?? '').join('、') : ''
      case 'json':
        return JSON.stringify(v)
      default:
        return typeof v === 'object' ? JSON.stringify(v) : String(v)
    }
  }

  return { text }
}
