/**
 * Types read off a server's tasks object. Structural on purpose: the web app imports the
 * tasks module with `import type`, so neither @ratchet/core nor the task code reaches its bundle.
 */
export interface TaskLike {
  readonly id: string
  readonly '~types'?: { input: unknown; output: unknown }
}

export type TaskInput<T> = T extends { readonly '~types'?: { input: infer I } } ? I : never
export type TaskOutput<T> = T extends { readonly '~types'?: { output: infer O } } ? O : never

/** The keys of a tasks object whose values are tasks. */
export type TaskKeys<TTasks> = {
  [K in keyof TTasks]: TTasks[K] extends TaskLike ? K : never
}[keyof TTasks] &
  string
