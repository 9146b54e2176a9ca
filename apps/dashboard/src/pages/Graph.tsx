import dagre from '@dagrejs/dagre'
import { useQuery } from '@tanstack/react-query'
import {
  Background,
  Controls,
  Handle,
  MarkerType,
  Position,
  ReactFlow,
  type Edge,
  type Node,
  type NodeProps,
} from '@xyflow/react'
import '@xyflow/react/dist/style.css'
import { useMemo } from 'react'
import { Link, useLocation } from 'wouter'
import { errorMessage, orpc } from '../api'
import { duration, shortId, STATUS_COLOURS, STATUSES } from '../format'
import { ErrorNote, Loading, PageHeader, StatusBadge } from '../ui'
import { useTree, type Summary, type Tree } from './tree'

const NODE_W = 220
const NODE_H = 58

type ExecNode = Node<{ execution: Summary; current: boolean }, 'execution'>

function ExecutionNode({ data }: NodeProps<ExecNode>) {
  const e = data.execution
  return (
    <div
      className={`gnode ${data.current ? 'current' : ''}`}
      style={{ borderColor: STATUS_COLOURS[e.status] }}
      data-id={e.id}
      data-status={e.status}
      title={`${e.taskId} ${e.id}: ${e.status}`}
    >
      <Handle type="target" position={Position.Top} />
      <div className="gnode-head">
        <span className="gnode-task">{e.taskId}</span>
        <span className="dot" style={{ background: STATUS_COLOURS[e.status] }} />
      </div>
      <div className="gnode-sub">
        <span className="mono">{shortId(e.id)}</span>
        <span>
          {e.startedAt
            ? duration((e.finishedAt ?? new Date()).getTime() - e.startedAt.getTime())
            : e.status.replace('_', ' ')}
        </span>
      </div>
      <Handle type="source" position={Position.Bottom} />
    </div>
  )
}

const nodeTypes = { execution: ExecutionNode }

/**
 * Nodes and edges of a tree, laid out by dagre top to bottom: a solid edge from each parent to
 * each child; a dashed "then" edge between two children of one parent when the second started
 * after the first finished (a sequence), none between children that overlapped (a fan-out).
 */
function layout(tree: Tree, currentId: string): { nodes: ExecNode[]; edges: Edge[] } {
  const g = new dagre.graphlib.Graph()
  g.setGraph({ rankdir: 'TB', nodesep: 24, ranksep: 56, marginx: 16, marginy: 16 })
  g.setDefaultEdgeLabel(() => ({}))
  const edges: Edge[] = []
  for (const node of tree.nodes) {
    g.setNode(node.execution.id, { width: NODE_W, height: NODE_H })
    const children = node.children
    children.forEach((child, i) => {
      const colour = STATUS_COLOURS[child.execution.status]
      edges.push({
        id: `c-${child.execution.id}`,
        source: node.execution.id,
        target: child.execution.id,
        style: { stroke: colour, strokeWidth: 1.5 },
        markerEnd: { type: MarkerType.ArrowClosed, color: colour },
      })
      g.setEdge(node.execution.id, child.execution.id, { weight: 1 })
      const previous = children[i - 1]?.execution
      if (previous?.finishedAt && child.execution.createdAt.getTime() >= previous.finishedAt.getTime()) {
        edges.push({
          id: `s-${previous.id}-${child.execution.id}`,
          source: previous.id,
          target: child.execution.id,
          label: 'then',
          style: { strokeDasharray: '5 4', stroke: '#94a3b8' },
          labelStyle: { fontSize: 10, fill: '#64748b' },
          markerEnd: { type: MarkerType.ArrowClosed, color: '#94a3b8' },
        })
        g.setEdge(previous.id, child.execution.id, { weight: 2 })
      }
    })
  }
  dagre.layout(g)
  const nodes = tree.nodes.map((node): ExecNode => {
    const { x, y } = g.node(node.execution.id) as { x: number; y: number }
    return {
      id: node.execution.id,
      type: 'execution',
      position: { x: x - NODE_W / 2, y: y - NODE_H / 2 },
      data: { execution: node.execution, current: node.execution.id === currentId },
    }
  })
  return { nodes, edges }
}

/** The execution tree of a run as a graph, coloured by status; a click opens an execution. */
export function GraphPage({ id }: { id: string }) {
  const [, navigate] = useLocation()
  const execution = useQuery(orpc.executions.get.queryOptions({ input: { id } }))
  const rootId = execution.data?.rootId ?? id
  const tree = useTree(rootId)
  const graph = useMemo(() => (tree.data ? layout(tree.data, id) : undefined), [tree.data, id])
  if (execution.isError) return <ErrorNote error={new Error(errorMessage(execution.error))} />
  if (tree.isPending || !graph) return <Loading what="workflow graph" />
  if (tree.isError) return <ErrorNote error={new Error(errorMessage(tree.error))} />
  const counts = new Map<string, number>()
  for (const n of tree.data.nodes) counts.set(n.execution.status, (counts.get(n.execution.status) ?? 0) + 1)
  const root = tree.data.root?.execution
  return (
    <div className="page page-full">
      <PageHeader
        title="Workflow graph"
        sub={
          <>
            root{' '}
            <Link href={`/executions/${encodeURIComponent(rootId)}`} className="mono link">
              {rootId}
            </Link>
            {root && (
              <>
                {' '}
                · {root.taskId} · {tree.data.nodes.length} executions
              </>
            )}
            {tree.data.truncated && ' (first 2000 shown)'}
          </>
        }
        actions={
          <div className="legend">
            {STATUSES.filter((s) => counts.has(s)).map((s) => (
              <span key={s}>
                <StatusBadge status={s} /> {counts.get(s)}
              </span>
            ))}
          </div>
        }
      />
      <div className="graph-box" aria-label="Workflow graph">
        <ReactFlow
          nodes={graph.nodes}
          edges={graph.edges}
          nodeTypes={nodeTypes}
          fitView
          fitViewOptions={{ maxZoom: 1.2 }}
          minZoom={0.1}
          nodesDraggable={false}
          nodesConnectable={false}
          onNodeClick={(_, node) => navigate(`/executions/${encodeURIComponent(node.id)}`)}
        >
          <Background gap={16} color="#e2e8f0" />
          <Controls showInteractive={false} />
        </ReactFlow>
      </div>
    </div>
  )
}
