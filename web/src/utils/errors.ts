// Turns anything thrown by the API layer into a readable, localised message.
import { ElMessage } from 'element-plus'
import { ApiError } from '@/api/http'
import { i18n } from '@/locales'

export function errorMessage(e: unknown): string {
  const t = i18n.global.t
  if (e instanceof ApiError) {
    if (e.isNetwork) return t('errors.network')
    if (e.isServer) {
      const base = t('errors.server', { code: e.status })
      return e.requestId ? `${base} ${t('errors.requestId', { id: e.requestId })}` : base
    }
    return e.message || t('errors.generic', { msg: e.code })
  }
  if (e instanceof Error) return t('errors.generic', { msg: e.message })
  return t('errors.generic', { msg: String(e) })
}

/** Shows an error toast. A 401 is handled by the router (go to login), so it is not shown twice. */
export function showError(e: unknown): void {
  if (e instanceof ApiError && e.status === 401 && e.code === 'unauthenticated') return
  ElMessage({ type: 'error', message: errorMessage(e), showClose: true, duration: 6000 })
}

/** Field errors of a 422, keyed by field; joined for display under the field. */
export function fieldErrors(e: unknown): Record<string, string> {
  if (!(e instanceof ApiError)) return {}
  const out: Record<string, string> = {}
  for (const [k, msgs] of Object.entries(e.fields)) out[k] = msgs.join('；')
  return out
}
