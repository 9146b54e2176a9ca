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

/**
 * The events a server accepts, read off its events schema's type (a Standard Schema such as
 * a zod discriminated union, imported with `import type`); any object with a `type` without one.
 */
export type EventOf<TEvents> = [TEvents] extends [{ readonly '~standard': { readonly types?: infer T } }]
  ? NonNullable<T> extends { readonly input: infer I }
    ? I
    : { type: string; [key: string]: unknown }
  : { type: string; [key: string]: unknown }
