import { useQuery } from '@tanstack/react-query'
import { client, orpc } from '../api'

export type Summary = Awaited<ReturnType<typeof client.executions.list>>['items'][number]

export interface TreeNode {
  execution: Summary
  children: TreeNode[]
}

export interface Tree {
  root: TreeNode | undefined
  nodes: TreeNode[]
  byId: Map<string, TreeNode>
  /** More executions than MAX_NODES: the tree shows the first ones. */
  truncated: boolean
}

const MAX_NODES = 2000

/** Reads a whole execution tree (list by rootId, page by page, up to 2000) and links it up. */
export async function loadTree(rootId: string): Promise<Tree> {
  const all: Summary[] = []
  let cursor: string | undefined
  do {
    const page = await client.executions.list({ rootId, limit: 500, ...(cursor ? { cursor } : {}) })
    all.push(...page.items)
    cursor = page.nextCursor ?? undefined
  } while (cursor && all.length < MAX_NODES)
  // Oldest first, so children keep the order they were started in.
  all.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.id.localeCompare(b.id))
  const byId = new Map<string, TreeNode>(all.map((execution) => [execution.id, { execution, children: [] }]))
  for (const node of byId.values()) {
    const parent = node.execution.parentId ? byId.get(node.execution.parentId) : undefined
    parent?.children.push(node)
  }
  return { root: byId.get(rootId), nodes: [...byId.values()], byId, truncated: cursor !== undefined }
}

export function useTree(rootId: string) {
  return useQuery({ queryKey: [...orpc.executions.key(), 'tree', rootId], queryFn: () => loadTree(rootId) })
}
