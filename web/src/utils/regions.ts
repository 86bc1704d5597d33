// The province → city → district tree for the region cascader, from the server's region table
// (`GET /api/v1/regions`, docs/CUSTOMERS.md). Loaded once per page load and shared: the server
// also sends Cache-Control/ETag, so a reload is cheap. Customers keep region *names*, so the
// cascader's values are names.
import { ref } from 'vue'
import { customersApi, type RegionTreeNode } from '@/api/customers'

export interface RegionNode {
  value: string
  label: string
  children?: RegionNode[]
}

/** Server tree → cascader options (names as values; leaves have no `children`). */
export function toCascader(nodes: RegionTreeNode[]): RegionNode[] {
  return nodes.map((n) => {
    const out: RegionNode = { value: n.name, label: n.name }
    if (n.children?.length) out.children = toCascader(n.children)
    return out
  })
}

export const regionTree = ref<RegionNode[]>([])
let pending: Promise<RegionNode[]> | null = null

/** Loads the tree once; later calls share the same promise. A failure can be retried. */
export function loadRegions(): Promise<RegionNode[]> {
  if (!pending) {
    pending = customersApi
      .regions()
      .then((tree) => (regionTree.value = toCascader(tree)))
      .catch((e: unknown) => {
        pending = null
        throw e
      })
  }
  return pending
}

/** The object has the three text fields the cascader writes to. */
export function hasRegionFields(keys: string[]): boolean {
  return keys.includes('province') && keys.includes('city') && keys.includes('district')
}
