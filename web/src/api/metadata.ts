import { http } from './http'
import type { DictOption, FieldDef, ObjectDef } from './types'

export interface NewFieldBody {
  key: string
  label: { zh: string; en: string }
  type: string
  max_len?: number
  dict?: string
  object?: string
  required?: boolean
  min?: number
  max?: number
}

export const metaApi = {
  objects: () => http.get<{ data: ObjectDef[] }>('/meta/objects').then((r) => r.data),
  dictionaries: () => http.get<{ data: Record<string, DictOption[]> }>('/meta/dictionaries').then((r) => r.data),
  addField: (object: string, body: NewFieldBody) =>
    http.post<{ data: FieldDef }>(`/meta/objects/${encodeURIComponent(object)}/fields`, body).then((r) => r.data),
  deleteField: (object: string, key: string) =>
    http.del<void>(`/meta/objects/${encodeURIComponent(object)}/fields/${encodeURIComponent(key)}`),
}
