import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { metaApi } from '@/api/metadata'
import type { DictOption, FieldDef, ObjectDef } from '@/api/types'

export const useMetaStore = defineStore('meta', () => {
  const objects = ref<ObjectDef[]>([])
  const dictionaries = ref<Record<string, DictOption[]>>({})
  const loaded = ref(false)
  let inflight: Promise<void> | null = null

  const byKey = computed(() => {
    const m: Record<string, ObjectDef> = {}
    for (const o of objects.value) m[o.key] = o
    return m
  })

  async function load(force = false): Promise<void> {
    if (loaded.value && !force) return
    if (inflight && !force) return inflight
    inflight = (async () => {
      const [objs, dicts] = await Promise.all([metaApi.objects(), metaApi.dictionaries()])
      objects.value = objs
      dictionaries.value = dicts
      loaded.value = true
    })()
    try {
      await inflight
    } finally {
      inflight = null
    }
  }

  function object(key: string): ObjectDef | undefined {
    return byKey.value[key]
  }

  function field(objectKey: string, fieldKey: string): FieldDef | undefined {
    return byKey.value[objectKey]?.fields.find((f) => f.key === fieldKey)
  }

  function options(dict: string | null | undefined, includeDisabled = false): DictOption[] {
    if (!dict) return []
    const list = dictionaries.value[dict] ?? []
    return [...list].filter((o) => includeDisabled || o.enabled).sort((a, b) => a.sort_order - b.sort_order)
  }

  return { objects, dictionaries, loaded, load, object, field, options, byKey }
})
