// Saved list views on the server (personal or shared), and the export and file endpoints the
// list and form use.
import { http, buildUrl } from './http'
import type { ExportBody, ExportView, FileView, JobView, PermissionCatalogue, SavedView, ViewBody } from './types'

export const viewsApi = {
  list: (object: string) => http.get<{ data: SavedView[] }>('/views', { object }).then((r) => r.data),
  create: (body: ViewBody) => http.post<{ data: SavedView }>('/views', body).then((r) => r.data),
  update: (id: string, body: ViewBody) => http.patch<{ data: SavedView }>(`/views/${id}`, body).then((r) => r.data),
  remove: (id: string) => http.del<void>(`/views/${id}`),
}

export const filesApi = {
  /** Uploads one file for an attachment field. */
  upload(object: string, field: string, file: File): Promise<FileView> {
    const form = new FormData()
    form.append('object', object)
    form.append('field', field)
    form.append('file', file, file.name)
    return http.upload<{ data: FileView }>('/files', form).then((r) => r.data)
  },
  /** Where a file downloads from (the browser sends the session cookie). */
  url: (id: string) => buildUrl(`/files/${encodeURIComponent(id)}`),
}

export const exportApi = {
  start: (object: string, body: ExportBody) =>
    http.post<{ data: ExportView }>(`/records/${encodeURIComponent(object)}/export`, body).then((r) => r.data),
  get: (id: string) => http.get<{ data: ExportView }>(`/exports/${id}`).then((r) => r.data),
  job: (id: string) => http.get<{ data: JobView }>(`/jobs/${id}`).then((r) => r.data),
}

export const permissionsApi = {
  catalogue: () => http.get<{ data: PermissionCatalogue }>('/meta/permissions').then((r) => r.data),
}
