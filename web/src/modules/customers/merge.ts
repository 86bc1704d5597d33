// The field choice of the merge dialog (docs/CUSTOMERS-DUPLICATES.md "Merge" step 4): for each
// field the records disagree on, which record's value the target keeps. The server copies, for
// fields not named, the first source's value only when the target's is empty — the dialog
// starts from the same choice and sends only the fields where the user picked a source.
import type { FieldDef, RecordData } from '@/api/types'

export function isEmptyValue(v: unknown): boolean {
  return v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0)
}

const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null)

/** Fields worth asking about: at least two records have different non-empty values, or the target's is empty. */
export function conflictingFields(fields: FieldDef[], records: RecordData[], targetId: string): FieldDef[] {
  const target = records.find((r) => r.id === targetId)
  if (!target) return []
  return fields.filter((f) => {
    const values = records.map((r) => r[f.key]).filter((v) => !isEmptyValue(v))
    if (!values.length) return false
    return values.some((v) => !same(v, values[0])) || isEmptyValue(target[f.key])
  })
}

/** The default choice per field: the target's value when it has one, else the first source that has one. */
export function defaultChoice(fields: FieldDef[], records: RecordData[], targetId: string): Record<string, string> {
  const target = records.find((r) => r.id === targetId)
  const sources = records.filter((r) => r.id !== targetId)
  const out: Record<string, string> = {}
  if (!target) return out
  for (const f of fields) {
    if (!isEmptyValue(target[f.key])) out[f.key] = target.id
    else {
      const s = sources.find((r) => !isEmptyValue(r[f.key]))
      out[f.key] = (s ?? target).id
    }
  }
  return out
}

/** The body's `fields`: only the choices of a source (the target keeping its own needs no entry). */
export function mergeFields(choice: Record<string, string>, targetId: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, id] of Object.entries(choice)) if (id !== targetId) out[k] = id
  return out
}
