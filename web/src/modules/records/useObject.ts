import { computed, type MaybeRefOrGetter, toValue } from 'vue'
import { useMetaStore } from '@/stores/meta'
import { useAuthStore } from '@/stores/auth'
import { useAppStore } from '@/stores/app'
import type { FieldDef, ObjectDef, RecordData } from '@/api/types'
import { hasRegionFields } from '@/utils/regions'

/** System fields that stay out of create/edit forms even when writable. */
const FORM_EXCLUDED = new Set(['id', 'version', 'owner_id', 'created_at', 'created_by', 'updated_at', 'updated_by'])
/** Types that make poor table columns by default. */
const WIDE_TYPES = new Set(['long_text', 'json', 'attachments'])

export function useObject(objectKey: MaybeRefOrGetter<string>) {
  const meta = useMetaStore()
  const auth = useAuthStore()
  const app = useAppStore()

  const def = computed<ObjectDef | undefined>(() => meta.object(toValue(objectKey)))
  const label = computed(() => (def.value ? app.tl(def.value.label) : toValue(objectKey)))

  /** Fields the caller may see (field rules "hidden" removed). */
  const fields = computed<FieldDef[]>(() =>
    (def.value?.fields ?? []).filter((f) => auth.fieldRule(toValue(objectKey), f.key) !== 'hidden'),
  )

  const fieldMap = computed(() => {
    const m: Record<string, FieldDef> = {}
    for (const f of fields.value) m[f.key] = f
    return m
  })

  function fieldLabel(f: FieldDef | string): string {
    const fd = typeof f === 'string' ? fieldMap.value[f] : f
    return fd ? app.tl(fd.label) : String(f)
  }

  function isReadOnly(f: FieldDef): boolean {
    return f.read_only || f.type === 'state' || auth.fieldRule(toValue(objectKey), f.key) === 'read_only'
  }

  /** Fields shown on create/edit forms. */
  const formFields = computed(() => fields.value.filter((f) => !FORM_EXCLUDED.has(f.key) && f.type !== 'state' && !(f.read_only && f.system)))

  /** Columns shown in a list by default: title first, then the short business fields. */
  const defaultColumns = computed(() => {
    const d = def.value
    if (!d) return []
    const keys = fields.value
      .filter((f) => !f.system && !WIDE_TYPES.has(f.type) && f.type !== 'multi_select')
      .map((f) => f.key)
    const first = [d.fields.find((f) => f.key === 'number')?.key, d.title_field].filter((k): k is string => !!k)
    const rest = keys.filter((k) => !first.includes(k))
    return [...new Set([...first, ...rest])].slice(0, 8).concat(['updated_at'])
  })

  const hasRegion = computed(() => hasRegionFields(fields.value.map((f) => f.key)))

  function title(r: RecordData | null | undefined): string {
    if (!r || !def.value) return ''
    const v = r[def.value.title_field]
    return v === null || v === undefined || v === '' ? String(r.id) : String(v)
  }

  function stateLabel(value: unknown): string {
    const s = def.value?.state_machine?.states.find((x) => x.key === value)
    return s ? app.tl(s.label) : value === null || value === undefined ? '' : String(value)
  }

  return { def, label, fields, fieldMap, fieldLabel, isReadOnly, formFields, defaultColumns, hasRegion, title, stateLabel }
}
