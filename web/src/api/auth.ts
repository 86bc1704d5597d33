import { http } from './http'
import type { ApiToken, AuthConfig, LoginLogEntry, LoginResult, Me, SessionInfo, SettingsData } from './types'

const q = { quiet401: true }

export const authApi = {
  config: () => http.get<{ data: AuthConfig }>('/auth/config', undefined, q).then((r) => r.data),
  captcha: () =>
    http.get<{ data: { captcha_id: string; image: string } }>('/auth/captcha', undefined, q).then((r) => r.data),
  login: (body: {
    login: string
    password: string
    remember_me?: boolean
    captcha_id?: string
    captcha_answer?: string
  }) => http.post<{ data: LoginResult }>('/auth/login', body, q).then((r) => r.data),
  secondFactor: (body: { challenge_id: string; method: 'totp' | 'email' | 'recovery'; code: string }) =>
    http.post<{ data: LoginResult }>('/auth/login/second-factor', body, q).then((r) => r.data),
  sendEmailCode: (challenge_id: string) => http.post<unknown>('/auth/login/email-code', { challenge_id }, q),
  expiredPassword: (body: { challenge_id: string; new_password: string }) =>
    http.post<{ data: LoginResult }>('/auth/password/expired', body, q).then((r) => r.data),
  logout: () => http.post<void>('/auth/logout', {}, q),
  me: () => http.get<{ data: Me }>('/me', undefined, q).then((r) => r.data),
  register: (body: { username: string; display_name: string; email: string; mobile?: string; password: string }) =>
    http.post<unknown>('/auth/register', body, q),
  verifyEmail: (token: string) => http.post<unknown>('/auth/verify-email', { token }, q),
  forgot: (login: string) => http.post<unknown>('/auth/password/forgot', { login }, q),
  reset: (token: string, new_password: string) => http.post<unknown>('/auth/password/reset', { token, new_password }, q),
}

export const accountApi = {
  changePassword: (current_password: string, new_password: string) =>
    http.post<unknown>('/me/password', { current_password, new_password }),
  updateProfile: (body: { display_name: string; email: string | null; mobile: string | null }) =>
    http.patch<unknown>('/me/profile', body),
  sessions: () => http.get<{ data: SessionInfo[] }>('/me/sessions').then((r) => r.data),
  revokeSession: (id: string) => http.del<void>(`/me/sessions/${encodeURIComponent(id)}`),
  revokeAll: () => http.post<unknown>('/me/sessions/revoke-all', {}),
  totpSetup: () =>
    http.post<{ data: { secret: string; otpauth_url: string; qr_image: string } }>('/me/totp/setup', {}).then((r) => r.data),
  totpEnable: (code: string) =>
    http.post<{ data: { recovery_codes: string[] } }>('/me/totp/enable', { code }).then((r) => r.data),
  totpDisable: (password: string) => http.post<unknown>('/me/totp/disable', { password }),
  tokens: () => http.get<{ data: ApiToken[] }>('/me/tokens').then((r) => r.data),
  createToken: (body: { name: string; scopes: string[]; expires_in_days: number | null }) =>
    http.post<{ data: ApiToken }>('/me/tokens', body).then((r) => r.data),
  deleteToken: (id: string) => http.del<void>(`/me/tokens/${encodeURIComponent(id)}`),
}

export interface LoginLogQuery {
  user_id?: string
  login?: string
  result?: string
  from?: string
  to?: string
  before?: string
  limit?: number
}

export const adminApi = {
  loginLogs: (query: LoginLogQuery) =>
    http.get<{ data: LoginLogEntry[] }>('/logs/logins', { ...query }).then((r) => r.data),
  settings: () => http.get<{ data: SettingsData }>('/admin/settings').then((r) => r.data),
  saveSettings: (body: Record<string, unknown>) =>
    http.patch<{ data: SettingsData }>('/admin/settings', body).then((r) => r.data),
  setUserPassword: (id: string, password: string) =>
    http.post<void>(`/admin/users/${encodeURIComponent(id)}/password`, { password }),
}
