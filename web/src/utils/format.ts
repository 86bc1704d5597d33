// Value formatting shared by tables, detail pages and tests. Pure functions, no Vue.
import type { Money } from '@/api/types'

export const TIME_ZONE = 'Asia/Shanghai'

/** Fen (integer) → "1,234.56". */
export function formatMoney(v: unknown, locale = 'zh-CN'): string {
  const m = toMoney(v)
  if (!m) return ''
  const yuan = m.amount / 100
  const s = yuan.toLocaleString(locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 })
  return m.currency && m.currency !== 'CNY' ? `${m.currency} ${s}` : `¥${s}`
}

export function toMoney(v: unknown): Money | null {
  if (v === null || v === undefined || v === '') return null
  if (typeof v === 'number') return { amount: v, currency: 'CNY' }
  if (typeof v === 'object' && v && 'amount' in v) {
    const o = v as { amount: unknown; currency?: unknown }
    if (typeof o.amount !== 'number') return null
    return { amount: o.amount, currency: typeof o.currency === 'string' ? o.currency : 'CNY' }
  }
  return null
}

/** Yuan as typed by a person (2 decimals) → integer fen, without float drift (0.29 → 29). */
export function yuanToFen(yuan: number | null | undefined): number | null {
  if (yuan === null || yuan === undefined || Number.isNaN(yuan)) return null
  return Math.round(yuan * 100)
}

export function fenToYuan(fen: number | null | undefined): number | null {
  if (fen === null || fen === undefined) return null
  return fen / 100
}

function parts(d: Date): Record<string, string> {
  const fmt = new Intl.DateTimeFormat('en-GB', {
    timeZone: TIME_ZONE,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
    hourCycle: 'h23',
  })
  const out: Record<string, string> = {}
  for (const p of fmt.formatToParts(d)) out[p.type] = p.value
  return out
}

/** RFC 3339 (UTC) → "2026-11-22 09:30" in Asia/Shanghai. */
export function formatDateTime(v: unknown, withSeconds = false): string {
  if (typeof v !== 'string' || !v) return ''
  const d = new Date(v)
  if (Number.isNaN(d.getTime())) return v
  const p = parts(d)
  const base = `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}`
  return withSeconds ? `${base}:${p.second}` : base
}

/** RFC 3339 → "YYYY-MM-DD HH:mm:ss" wall time in Shanghai, for the date-time picker. */
export function utcToShanghaiInput(v: unknown): string | null {
  if (typeof v !== 'string' || !v) return null
  const d = new Date(v)
  if (Number.isNaN(d.getTime())) return null
  const p = parts(d)
  return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`
}

/** Picker wall time in Shanghai "YYYY-MM-DD HH:mm:ss" → RFC 3339 with +08:00 (server stores UTC). */
export function shanghaiInputToRfc3339(v: string | null | undefined): string | null {
  if (!v) return null
  const m = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2})(?::(\d{2}))?$/.exec(v)
  if (!m) return null
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6] ?? '00'}+08:00`
}

export function formatBytes(n: unknown): string {
  if (typeof n !== 'number') return ''
  if (n < 1024) return `${n} B`
  // "10 MB", not "10.0 MB": limits are round numbers and read better without the decimal.
  const unit = (v: number, u: string) => `${Number.isInteger(v) ? v : v.toFixed(1)} ${u}`
  if (n < 1024 * 1024) return unit(n / 1024, 'KB')
  return unit(n / 1024 / 1024, 'MB')
}

/** Today's date in Shanghai, "YYYY-MM-DD". */
export function todayShanghai(): string {
  const p = parts(new Date())
  return `${p.year}-${p.month}-${p.day}`
}
