import type { Execution } from '@ratchet/contract'
import { errorMessage } from '../api'
import { duration } from '../format'
import { ErrorNote, ExecLink, Loading, StatusBadge } from '../ui'
import { useTree, type TreeNode } from './tree'

/** The executions below this one (children, their children, …) with their statuses. */
export function ChildTree({ execution }: { execution: Execution }) {
  const tree = useTree(execution.rootId)
  if (tree.isPending) return <Loading what="children" />
  if (tree.isError) return <ErrorNote error={new Error(errorMessage(tree.error))} />
  const node = tree.data.byId.get(execution.id)
  if (!node || node.children.length === 0) return <div className="muted">No children.</div>
  return (
    <ul className="tree" aria-label="Child tree">
      {node.children.map((child) => (
        <TreeItem key={child.execution.id} node={child} />
      ))}
      {tree.data.truncated && (
        <li className="muted small">(only the first {tree.data.nodes.length} executions of the tree)</li>
      )}
    </ul>
  )
}

function TreeItem({ node }: { node: TreeNode }) {
  const e = node.execution
  return (
    <li>
      <div className="tree-row">
        <ExecLink id={e.id} /> <span>{e.taskId}</span> <StatusBadge status={e.status} />
        {e.startedAt && (
          <span className="muted small mono">
            {duration((e.finishedAt ?? new Date()).getTime() - e.startedAt.getTime())}
          </span>
        )}
      </div>
      {node.children.length > 0 && (
        <ul>
          {node.children.map((c) => (
            <TreeItem key={c.execution.id} node={c} />
          ))}
        </ul>
      )}
    </li>
  )
}
