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
import { useTree, type Summary, type Tree, type TreeNode } from './tree'

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
 * The children of one parent in "waves": children started while an earlier one of the same
 * wave was still running belong together (a fan-out); a child started after every child of the
 * current wave had finished opens the next wave (a sequence, or a fan-in after a fan-out).
 */
function waves(children: readonly TreeNode[]): TreeNode[][] {
  const result: TreeNode[][] = []
  let current: TreeNode[] = []
  let end = -Infinity
  for (const child of children) {
    const created = child.execution.createdAt.getTime()
    if (current.length > 0 && created >= end) {
      result.push(current)
      current = []
      end = -Infinity
    }
    current.push(child)
    end = Math.max(end, child.execution.finishedAt?.getTime() ?? Infinity)
  }
  if (current.length > 0) result.push(current)
  return result
}

/** Above this many edges between two waves, each child of the later one gets only one. */
const MAX_WAVE_EDGES = 64

/**
 * Nodes and edges of a tree, laid out by dagre top to bottom: a solid edge from a parent to each
 * child of its first wave; a dashed edge from every child of a wave to every child of the next
 * (it started after they all finished), so a sequence is a chain, a fan-out a row and a fan-in
 * converging edges.
 */
function layout(tree: Tree, currentId: string): { nodes: ExecNode[]; edges: Edge[] } {
  const g = new dagre.graphlib.Graph()
  g.setGraph({ rankdir: 'TB', nodesep: 24, ranksep: 56, marginx: 16, marginy: 16 })
  g.setDefaultEdgeLabel(() => ({}))
  const edges: Edge[] = []
  const link = (source: Summary, target: Summary, then: boolean) => {
    const colour = then ? '#94a3b8' : STATUS_COLOURS[target.status]
    edges.push({
      id: `${then ? 't' : 'c'}-${source.id}-${target.id}`,
      source: source.id,
      target: target.id,
      ...(then ? { className: 'then-edge' } : {}),
      style: then ? { strokeDasharray: '5 4', stroke: colour } : { stroke: colour, strokeWidth: 1.5 },
      markerEnd: { type: MarkerType.ArrowClosed, color: colour },
    })
    g.setEdge(source.id, target.id)
  }
  for (const node of tree.nodes) g.setNode(node.execution.id, { width: NODE_W, height: NODE_H })
  for (const node of tree.nodes) {
    const groups = waves(node.children)
    for (const child of groups[0] ?? []) link(node.execution, child.execution, false)
    groups.forEach((wave, i) => {
      const previous = groups[i - 1]
      if (!previous) return
      const sources =
        previous.length * wave.length > MAX_WAVE_EDGES
          ? [
              previous.reduce((a, b) =>
                (b.execution.finishedAt?.getTime() ?? 0) > (a.execution.finishedAt?.getTime() ?? 0) ? b : a,
              ),
            ]
          : previous
      for (const target of wave) for (const source of sources) link(source.execution, target.execution, true)
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
            {tree.data.truncated && ' (first 2000 shown)'} · solid: started by its parent; dashed: started
            after the ones above finished
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
