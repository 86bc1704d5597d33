// Types for the parts of the API the OpenAPI document does not describe yet (metadata, auth).
// Record, list and error shapes come from the generated schema.d.ts.
import type { components } from './schema'

export type ErrorBody = components['schemas']['ErrorBody'] & { details?: Record<string, unknown> | null }
export type ListMeta = components['schemas']['ListMeta']
export type BulkResult = components['schemas']['BulkResult']

export interface I18nText {
  zh: string
  en: string
}

export type FieldType =
  | 'text'
  | 'long_text'
  | 'integer'
  | 'decimal'
  | 'money'
  | 'boolean'
  | 'date'
  | 'date_time'
  | 'email'
  | 'phone'
  | 'url'
  | 'select'
  | 'multi_select'
  | 'relation'
  | 'multi_relation'
  | 'attachments'
  | 'json'
  | 'state'

export interface FieldDef {
  key: string
  label: I18nText
  type: FieldType
  required: boolean
  read_only: boolean
  unique: boolean
  filterable: boolean
  sortable: boolean
  custom: boolean
  system: boolean
  max_len?: number | null
  dict?: string | null
  object?: string | null
  min?: number | null
  max?: number | null
  max_files?: number | null
  max_size_bytes?: number | null
  allowed_extensions?: string[] | null
  /** Optional grouping hint for the detail/form sections (not sent by every server version). */
  section?: string | null
  numbering?: Record<string, unknown> | null
}

export interface StateDef {
  key: string
  label: I18nText
}

export interface TransitionDef {
  action: string
  label: I18nText
  from: string[]
  to: string
  permission: string | null
  remark_required: boolean
}

export interface StateMachine {
  field: string
  initial: string
  states: StateDef[]
  transitions: TransitionDef[]
}

export interface ObjectDef {
  key: string
  label: I18nText
  fields: FieldDef[]
  title_field: string
  search_fields: string[]
  default_sort: string[]
  state_machine?: StateMachine | null
  operators: Record<string, string[]>
  /** Optional navigation group hint (e.g. "customers", "sales", "system"). */
  module?: string | null
}

export interface DictOption {
  value: string
  label: I18nText
  sort_order: number
  enabled: boolean
}

export type RecordData = Record<string, unknown> & { id: string; version: number }

export interface ListResponse<T = RecordData> {
  data: T[]
  meta: ListMeta
}

export interface Money {
  amount: number
  currency: string
}

/** One entry of an attachment field's value: a file uploaded with POST /files. */
export interface Attachment {
  id: string
  name: string
  size: number
}

export interface FieldChange {
  field: string
  old: unknown
  new: unknown
  action?: string
  remark?: string | null
}

export interface AuditEntry {
  id: string
  at: string
  actor_id: string
  actor_name?: string | null
  object: string
  record_id: string
  action: string
  title?: string | null
  changes?: FieldChange[] | null
}

export interface TransitionEntry {
  id: string
  action: string
  from_state: string | null
  to_state: string
  actor_id: string
  actor_name?: string | null
  at: string
  remark: string | null
}

export type FilterCond = { field: string; op: string; value: unknown }
export type FilterNode = { and: FilterNode[] } | { or: FilterNode[] } | FilterCond

export interface ListParams {
  q?: string
  filter?: FilterNode | null
  sort?: string
  limit?: number
  cursor?: string
  page?: number
  fields?: string[]
  total?: 'capped' | 'exact' | 'none'
}

// ---- identity (contract announced by the server team; see README "Server contract") ----

export type Scope = 'self' | 'subordinates' | 'department' | 'department_tree' | 'all'
export type FieldRule = 'hidden' | 'read_only'

export interface MeUser {
  id: string
  username: string
  display_name: string
  email: string | null
  mobile?: string | null
  department_id: string | null
  totp_enabled: boolean
}

export interface Me {
  user: MeUser
  roles: { id: string; name: string; code?: string }[]
  permissions: Record<string, Record<string, Scope>>
  field_rules: Record<string, Record<string, FieldRule>>
  is_admin: boolean
}

export interface AuthConfig {
  registration_enabled: boolean
  password_policy: { min_length: number; min_classes: number; expiry_days: number }
  username_pattern: string
}

export type LoginResult =
  | { status: 'ok'; me: Me }
  | { status: 'second_factor'; challenge_id: string; methods: ('totp' | 'email')[] }
  | { status: 'password_expired'; challenge_id: string }

export interface SessionInfo {
  id: string
  created_at: string
  last_seen_at: string
  ip: string | null
  user_agent: string | null
  current: boolean
}

export interface ApiToken {
  id: string
  name: string
  scopes: string[]
  created_at?: string
  expires_at?: string | null
  last_used_at?: string | null
  token?: string
}

export interface LoginLogEntry {
  id: string
  at: string
  user_id: string | null
  login: string | null
  ip: string | null
  user_agent: string | null
  /** success, failure or challenge */
  result: string
  reason: string | null
}

export interface SettingsData {
  editable: { key: string; type: string; value: unknown }[]
  configured: Record<string, unknown>
}

// ---- saved views, files, exports, permission catalogue (generated shapes, typed filters) ----

export type SavedView = Omit<components['schemas']['SavedView'], 'filter'> & { filter?: FilterNode | null }
export type ViewBody = Omit<components['schemas']['ViewBody'], 'filter'> & { filter?: FilterNode | null }
export type FileView = components['schemas']['FileView']
export type ExportView = components['schemas']['ExportView']
export type ExportFormat = components['schemas']['ExportFormat']
export type ExportBody = Omit<components['schemas']['ExportBody'], 'filter'> & { filter?: FilterNode | null }
export type PermissionCatalogue = components['schemas']['PermissionCatalogue']
export type ObjectPermissions = components['schemas']['ObjectPermissions']

/** A background job's state (GET /jobs/{id}), for progress bars. */
export interface JobView {
  id: string
  kind: string
  /** queued, running, done, failed */
  status: string
  attempts: number
  max_attempts: number
  progress_done: number
  progress_total: number | null
  last_error: string | null
  result: unknown
  created_at: string
  updated_at: string
}
