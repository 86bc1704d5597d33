import { http } from './http'
import type { components } from './schema'
import type { AuditEntry, BulkResult, ListParams, ListResponse, RecordData, TransitionEntry } from './types'

type QueryBody = components['schemas']['QueryBody']

const base = (object: string) => `/records/${encodeURIComponent(object)}`

export function listQuery(p: ListParams): Record<string, string | number | undefined> {
  return {
    q: p.q || undefined,
    filter: p.filter ? JSON.stringify(p.filter) : undefined,
    sort: p.sort || undefined,
    limit: p.limit,
    cursor: p.cursor,
    page: p.page,
    fields: p.fields?.length ? p.fields.join(',') : undefined,
    total: p.total,
  }
}

export const recordsApi = {
  list(object: string, p: ListParams = {}, signal?: AbortSignal) {
    const q = listQuery(p)
    // Long filters go in a POST body (the server accepts both; GET is preferred for reads).
    if (String(q.filter ?? '').length > 1500) {
      const body = { ...q, filter: p.filter, fields: p.fields } as unknown as QueryBody
      return http.post<ListResponse>(`${base(object)}/query`, body, { signal })
    }
    return http.get<ListResponse>(base(object), q, { signal })
  },
  get: (object: string, id: string) => http.get<{ data: RecordData }>(`${base(object)}/${id}`).then((r) => r.data),
  create: (object: string, data: Record<string, unknown>) =>
    http.post<{ data: RecordData }>(base(object), data).then((r) => r.data),
  update: (object: string, id: string, data: Record<string, unknown>) =>
    http.patch<{ data: RecordData }>(`${base(object)}/${id}`, data).then((r) => r.data),
  remove: (object: string, id: string, version?: number) =>
    http.del<void>(`${base(object)}/${id}`, version === undefined ? undefined : { version }),
  recycleBin: (object: string, p: ListParams = {}) =>
    http.get<ListResponse>(`${base(object)}/recycle-bin`, listQuery(p)),
  restore: (object: string, id: string) =>
    http.post<{ data: RecordData }>(`${base(object)}/${id}/restore`, {}).then((r) => r.data),
  purge: (object: string, id: string) => http.del<void>(`${base(object)}/recycle-bin/${id}`),
  bulkUpdate: (object: string, ids: string[], changes: Record<string, unknown>) =>
    http.post<{ data: BulkResult }>(`${base(object)}/bulk-update`, { ids, changes }),
  bulkDelete: (object: string, ids: string[]) => http.post<{ data: BulkResult }>(`${base(object)}/bulk-delete`, { ids }),
  history: (object: string, id: string) =>
    http.get<{ data: AuditEntry[] }>(`${base(object)}/${id}/history`).then((r) => r.data),
  transitions: (object: string, id: string) =>
    http.get<{ data: TransitionEntry[] }>(`${base(object)}/${id}/transitions`).then((r) => r.data),
  transition: (object: string, id: string, action: string, body: { remark?: string; version?: number }) =>
    http
      .post<{ data: RecordData }>(`${base(object)}/${id}/transitions/${encodeURIComponent(action)}`, body)
      .then((r) => r.data),
}

export interface AuditQuery {
  object?: string
  record_id?: string
  actor_id?: string
  action?: string
  from?: string
  to?: string
  before?: string
  limit?: number
}

export const auditApi = {
  list: (q: AuditQuery) =>
    http.get<{ data: AuditEntry[]; meta?: { next_before?: string | null } }>('/audit', { ...q }),
}
