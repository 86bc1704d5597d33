// Customer-specific endpoints (issue 5): regions, duplicates, merge/undo, public pool,
// statistics, and the import batches of docs/IMPORT-EXPORT.md.
import { http, type Query } from './http'
import { listQuery } from './records'
import type { FilterNode, ListParams, ListResponse, RecordData } from './types'

export interface RegionTreeNode {
  code: string
  name: string
  children?: RegionTreeNode[]
}

export interface DuplicateMatch {
  record: RecordData
  matched_on: string[]
}
export interface DuplicateResult {
  matches: DuplicateMatch[]
  visible_count: number
  hidden_count: number
}

export interface MergeEntry {
  id: string
  target_id: string
  target_title?: string | null
  sources: { id: string; title?: string | null }[]
  fields: Record<string, { source_id?: string; old?: unknown; new?: unknown }> | { field: string }[] | null
  moved: Record<string, number> | null
  status: string
  merged_by?: string | null
  merged_by_name?: string | null
  merged_at: string
}

export interface MergeRequest {
  target_id: string
  source_ids: string[]
  fields: Record<string, string>
  target_version?: number
  source_versions?: Record<string, number>
}

export interface StatGroup {
  value: string | null
  label: string
  count: number
}
export interface StatsResult {
  by: string
  field: string
  label: string
  total: number
  groups: StatGroup[]
}
export interface GrowthBucket {
  period: string
  start: string
  count: number
  cumulative: number
}
export interface GrowthResult {
  interval: string
  from: string
  to: string
  base: number
  total: number
  buckets: GrowthBucket[]
}

const filterParam = (f: FilterNode | null | undefined) => (f ? JSON.stringify(f) : undefined)

export const customersApi = {
  regions: () => http.get<{ data: RegionTreeNode[] }>('/regions').then((r) => r.data),
  duplicates: (body: { name?: string | null; phone?: string | null; email?: string | null; credit_code?: string | null; exclude_id?: string | null }) =>
    http.post<{ data: DuplicateResult }>('/customers/duplicates', body).then((r) => r.data),
  createConfirmed: (data: Record<string, unknown>) =>
    http.post<{ data: RecordData }>('/records/customer', data, { query: { confirm_duplicates: true } }).then((r) => r.data),
  merge: (body: MergeRequest) =>
    http.post<{ data: { merge: MergeEntry; target: RecordData; moved: Record<string, number> } }>('/customers/merge', body).then((r) => r.data),
  merges: (q: Query = {}) => http.get<{ data: MergeEntry[]; meta?: { next_before?: string | null } }>('/customers/merges', q),
  undoMerge: (id: string) => http.post<{ data: unknown }>(`/customers/merges/${encodeURIComponent(id)}/undo`, {}),
  pool: (p: ListParams = {}) => http.get<ListResponse>('/customers/pool', listQuery(p)),
  claim: (id: string) => http.post<{ data: RecordData }>(`/customers/${encodeURIComponent(id)}/claim`, {}).then((r) => r.data),
  release: (id: string, reason: string, version?: number) =>
    http.post<{ data: RecordData }>(`/customers/${encodeURIComponent(id)}/release`, { reason, version }).then((r) => r.data),
  stats: (by: string, filter?: FilterNode | null) =>
    http.get<{ data: StatsResult }>('/customers/stats', { by, filter: filterParam(filter) }).then((r) => r.data),
  growth: (interval: 'month' | 'week' | 'day' = 'month', filter?: FilterNode | null) =>
    http.get<{ data: GrowthResult }>('/customers/stats/growth', { interval, filter: filterParam(filter) }).then((r) => r.data),
}

// ---- imports ----
export interface ImportColumn {
  index: number
  letter: string
  header: string
  field?: string | null
  unknown: boolean
}
export interface ImportBatch {
  id: string
  object: string
  status: string
  file_name?: string
  columns: ImportColumn[]
  mapping: Record<string, string | null>
  unknown_columns?: string[]
  fields?: { key: string; label: string | { zh: string; en: string }; required?: boolean }[]
  preview?: unknown[][]
  summary?: Record<string, unknown> | null
}
export interface ImportError {
  row: number
  column?: string | null
  field?: string | null
  code: string
  message: string
  value?: unknown
}
export interface JobInfo {
  id: string
  status: string
  progress_done?: number | null
  progress_total?: number | null
  result?: Record<string, unknown> | null
  error?: string | null
}

export const importsApi = {
  upload: (object: string, file: File) => {
    const form = new FormData()
    form.append('file', file)
    return http.upload<{ data: ImportBatch }>(`/records/${encodeURIComponent(object)}/import`, form).then((r) => r.data)
  },
  get: (id: string) => http.get<{ data: ImportBatch }>(`/imports/${id}`).then((r) => r.data),
  setMapping: (id: string, mapping: Record<string, string | null>) =>
    http.put<{ data: ImportBatch }>(`/imports/${id}/mapping`, { mapping, save: true }).then((r) => r.data),
  dryRun: (id: string, duplicate_policy: string) =>
    http.post<{ data: { job_id: string } }>(`/imports/${id}/dry-run`, { duplicate_policy }).then((r) => r.data),
  commit: (id: string, duplicate_policy: string) =>
    http.post<{ data: { job_id: string } }>(`/imports/${id}/commit`, { duplicate_policy }).then((r) => r.data),
  undo: (id: string) => http.post<{ data: { job_id: string } }>(`/imports/${id}/undo`, {}).then((r) => r.data),
  errors: (id: string, phase: string) =>
    http.get<{ data: ImportError[] }>(`/imports/${id}/errors`, { phase, limit: 200 }).then((r) => r.data),
  errorReportUrl: (id: string, phase: string) => `/api/v1/imports/${id}/errors.xlsx?phase=${phase}`,
  job: (id: string) => http.get<{ data: JobInfo }>(`/jobs/${id}`).then((r) => r.data),
}

/** Polls a job until it is finished; `onProgress` gets each state. */
export async function waitJob(id: string, onProgress?: (j: JobInfo) => void, intervalMs = 400): Promise<JobInfo> {
  for (;;) {
    const j = await importsApi.job(id)
    onProgress?.(j)
    if (j.status === 'done' || j.status === 'failed') return j
    await new Promise((r) => setTimeout(r, intervalMs))
  }
}
