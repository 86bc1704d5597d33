// Small typed wrappers over localStorage (preferences, saved views, recent records, to-dos).
// Everything is namespaced "gx." and survives bad JSON.

const PREFIX = 'gx.'

export function load<T>(key: string, fallback: T): T {
  try {
    const raw = localStorage.getItem(PREFIX + key)
    if (raw === null) return fallback
    return JSON.parse(raw) as T
  } catch {
    return fallback
  }
}

export function save(key: string, value: unknown): void {
  try {
    localStorage.setItem(PREFIX + key, JSON.stringify(value))
  } catch {
    // storage full or disabled: preferences are a convenience, never an error
  }
}

export function remove(key: string): void {
  try {
    localStorage.removeItem(PREFIX + key)
  } catch {
    /* ignore */
  }
}

export interface RecentItem {
  object: string
  id: string
  title: string
  at: number
}

const RECENT_KEY = 'recent'
const RECENT_MAX = 30

export function pushRecent(item: Omit<RecentItem, 'at'>): void {
  const list = load<RecentItem[]>(RECENT_KEY, []).filter((r) => !(r.object === item.object && r.id === item.id))
  list.unshift({ ...item, at: Date.now() })
  save(RECENT_KEY, list.slice(0, RECENT_MAX))
}

export function recentItems(object?: string): RecentItem[] {
  const list = load<RecentItem[]>(RECENT_KEY, [])
  return object ? list.filter((r) => r.object === object) : list
}
