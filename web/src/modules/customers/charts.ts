// Chart options for the customer statistics (docs/CUSTOMERS-DUPLICATES.md "Statistics"): the
// server groups and labels; this only shapes its answer for ECharts (pie for few groups, bar for
// many, a line for growth) and for tables.
import type { EChartsCoreOption } from 'echarts/core'
import type { GrowthResult, StatsResult } from '@/api/customers'

/** Past this many groups a pie is unreadable: the rest are summed into one slice/bar. */
export const MAX_GROUPS = 10

export interface ChartRow {
  name: string
  value: number
}

/** Groups as chart rows, largest first (as the server sends them), the tail folded into "other". */
export function statRows(s: StatsResult, otherLabel: string, max = MAX_GROUPS): ChartRow[] {
  const rows = s.groups.map((g) => ({ name: g.label, value: g.count }))
  if (rows.length <= max) return rows
  const head = rows.slice(0, max - 1)
  const rest = rows.slice(max - 1).reduce((n, r) => n + r.value, 0)
  return [...head, { name: otherLabel, value: rest }]
}

/** Share of each group in percent with one decimal (0 when the total is 0). */
export function share(count: number, total: number): number {
  return total ? Math.round((count / total) * 1000) / 10 : 0
}

export function pieOption(rows: ChartRow[]): EChartsCoreOption {
  return {
    tooltip: { trigger: 'item', formatter: '{b}: {c} ({d}%)' },
    legend: { type: 'scroll', bottom: 0 },
    series: [{ type: 'pie', radius: ['35%', '65%'], center: ['50%', '45%'], data: rows, label: { formatter: '{b}\n{c}' } }],
  }
}

export function barOption(rows: ChartRow[]): EChartsCoreOption {
  return {
    tooltip: { trigger: 'axis' },
    grid: { left: 90, right: 20, top: 10, bottom: 24 },
    xAxis: { type: 'value', minInterval: 1 },
    yAxis: { type: 'category', inverse: true, data: rows.map((r) => r.name) },
    series: [{ type: 'bar', data: rows.map((r) => r.value), barMaxWidth: 18 }],
  }
}

export function growthOption(g: GrowthResult, labels: { added: string; cumulative: string }): EChartsCoreOption {
  return {
    tooltip: { trigger: 'axis' },
    legend: { data: [labels.added, labels.cumulative], bottom: 0 },
    grid: { left: 40, right: 40, top: 20, bottom: 40 },
    xAxis: { type: 'category', data: g.buckets.map((b) => b.period) },
    yAxis: [
      { type: 'value', minInterval: 1 },
      { type: 'value', minInterval: 1, splitLine: { show: false } },
    ],
    series: [
      { name: labels.added, type: 'bar', data: g.buckets.map((b) => b.count), barMaxWidth: 24 },
      { name: labels.cumulative, type: 'line', yAxisIndex: 1, smooth: true, data: g.buckets.map((b) => b.cumulative) },
    ],
  }
}
