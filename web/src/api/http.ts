// The one HTTP client: JSON in and out, the error envelope turned into ApiError, CSRF header on
// writes, Accept-Language from the UI language, and a hook for "session expired".
import type { ErrorBody } from './types'

export const API_BASE = '/api/v1'

export class ApiError extends Error {
  readonly status: number
  readonly code: string
  readonly fields: Record<string, string[]>
  readonly fieldCodes: Record<string, string[]>
  readonly requestId: string | null
  readonly details: Record<string, unknown>

  constructor(status: number, body: Partial<ErrorBody> & { code: string; message: string }) {
    super(body.message)
    this.name = 'ApiError'
    this.status = status
    this.code = body.code
    this.fields = body.fields ?? {}
    this.fieldCodes = body.field_codes ?? {}
    this.requestId = body.request_id ?? null
    this.details = body.details ?? {}
  }

  /** No answer from the server at all (offline, refused, DNS, aborted by the browser). */
  get isNetwork(): boolean {
    return this.code === 'network_error'
  }

  get isServer(): boolean {
    return this.status >= 500
  }
}

let language = 'zh-CN'
let unauthenticatedHandler: ((err: ApiError) => void) | null = null

export function setApiLanguage(lang: string): void {
  language = lang
}

/** Called once by the auth store: a 401 `unauthenticated` anywhere sends the user to login. */
export function onUnauthenticated(handler: (err: ApiError) => void): void {
  unauthenticatedHandler = handler
}

export function readCookie(name: string): string | null {
  if (typeof document === 'undefined') return null
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=')
    if (k === name) return decodeURIComponent(v.join('='))
  }
  return null
}

export type Query = Record<string, string | number | boolean | null | undefined>

export interface RequestOptions {
  query?: Query
  body?: unknown
  signal?: AbortSignal
  /** Do not trigger the global "go to login" on 401 (used by the login pages and the first /me). */
  quiet401?: boolean
  headers?: Record<string, string>
  /** A multipart body (uploads); the browser sets the content type with its boundary. */
  form?: FormData
}

export function buildUrl(path: string, query?: Query): string {
  const url = path.startsWith('/') && !path.startsWith(API_BASE) ? API_BASE + path : path
  if (!query) return url
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) {
    if (v === undefined || v === null || v === '') continue
    params.set(k, String(v))
  }
  const s = params.toString()
  return s ? `${url}?${s}` : url
}

export async function request<T>(method: string, path: string, opts: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = {
    Accept: 'application/json',
    'Accept-Language': language,
    ...opts.headers,
  }
  if (method !== 'GET' && method !== 'HEAD') {
    const csrf = readCookie('gx_csrf')
    if (csrf) headers['X-CSRF-Token'] = csrf
  }
  let body: string | FormData | undefined
  if (opts.form) {
    body = opts.form
  } else if (opts.body !== undefined) {
    headers['Content-Type'] = 'application/json'
    body = JSON.stringify(opts.body)
  }
  let res: Response
  try {
    res = await fetch(buildUrl(path, opts.query), {
      method,
      headers,
      body,
      credentials: 'same-origin',
      signal: opts.signal,
    })
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e
    throw new ApiError(0, { code: 'network_error', message: String(e instanceof Error ? e.message : e) })
  }
  if (res.status === 204) return undefined as T
  const text = await res.text()
  let json: unknown = undefined
  if (text) {
    try {
      json = JSON.parse(text)
    } catch {
      json = undefined
    }
  }
  if (!res.ok) {
    const env = json as { error?: ErrorBody } | undefined
    const err = env?.error
      ? new ApiError(res.status, env.error)
      : new ApiError(res.status, {
          code: res.status >= 500 ? 'server_error' : `http_${res.status}`,
          message: res.statusText || `HTTP ${res.status}`,
        })
    if (res.status === 401 && err.code === 'unauthenticated' && !opts.quiet401 && unauthenticatedHandler) {
      unauthenticatedHandler(err)
    }
    throw err
  }
  return json as T
}

export const http = {
  get: <T>(path: string, query?: Query, opts: RequestOptions = {}) => request<T>('GET', path, { ...opts, query }),
  post: <T>(path: string, body?: unknown, opts: RequestOptions = {}) => request<T>('POST', path, { ...opts, body }),
  patch: <T>(path: string, body?: unknown, opts: RequestOptions = {}) => request<T>('PATCH', path, { ...opts, body }),
  put: <T>(path: string, body?: unknown, opts: RequestOptions = {}) => request<T>('PUT', path, { ...opts, body }),
  upload: <T>(path: string, form: FormData, opts: RequestOptions = {}) => request<T>('POST', path, { ...opts, form }),
  del: <T>(path: string, query?: Query, opts: RequestOptions = {}) => request<T>('DELETE', path, { ...opts, query }),
}
