import type { FieldDef } from '@/api/types'

/** System fields that hold a user id as text; shown as the user's name when `user` exists. */
export const USER_REF_FIELDS = ['owner_id', 'created_by', 'updated_by']

export function asUserRef(f: FieldDef, hasUserObject: boolean): FieldDef {
  if (hasUserObject && f.type === 'text' && USER_REF_FIELDS.includes(f.key)) return { ...f, type: 'relation', object: 'user' }
  return f
}
