// Titles of related records (relation fields show the title, not the UUID). Requests are
// batched: one list call per object with `id in [...]`.
import { defineStore } from 'pinia'
import { reactive } from 'vue'
import { recordsApi } from '@/api/records'
import { useMetaStore } from './meta'

export const useRelationStore = defineStore('relations', () => {
  const titles = reactive<Record<string, string>>({})
  const pending = new Map<string, Set<string>>()
  let timer: ReturnType<typeof setTimeout> | null = null

  const key = (object: string, id: string) => `${object}:${id}`

  function title(object: string, id: string): string | undefined {
    return titles[key(object, id)]
  }

  function remember(object: string, id: string, t: string) {
    titles[key(object, id)] = t
  }

  async function flush() {
    timer = null
    const meta = useMetaStore()
    const jobs = [...pending.entries()]
    pending.clear()
    await Promise.all(
      jobs.map(async ([object, set]) => {
        const ids = [...set]
        const def = meta.object(object)
        if (!def) return
        for (let i = 0; i < ids.length; i += 200) {
          const chunk = ids.slice(i, i + 200)
          try {
            const res = await recordsApi.list(object, {
              filter: { field: 'id', op: 'in', value: chunk },
              fields: [def.title_field],
              limit: chunk.length,
              total: 'none',
            })
            for (const r of res.data) titles[key(object, r.id)] = String(r[def.title_field] ?? r.id)
          } catch {
            // leave the id visible: better than an empty cell
          }
          for (const id of chunk) if (!(key(object, id) in titles)) titles[key(object, id)] = id
        }
      }),
    )
  }

  function ensure(object: string, ids: (string | null | undefined)[]) {
    for (const id of ids) {
      if (!id || key(object, id) in titles) continue
      let set = pending.get(object)
      if (!set) pending.set(object, (set = new Set()))
      set.add(id)
    }
    if (pending.size && !timer) timer = setTimeout(() => void flush(), 20)
  }

  return { title, ensure, remember, titles }
})
