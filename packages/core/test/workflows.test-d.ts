/** Compile-time tests (npm run typecheck): a sequence's tasks must chain. */
import { expectTypeOf } from 'vitest'
import { z } from 'zod'
import { sequence, task, type InputOf, type OutputOf } from '@ratchet/core'

const parse = task({
  id: 'parse',
  input: z.object({ raw: z.string() }),
  run: ({ raw }) => ({ words: raw.split(' ') }),
})
const count = task({
  id: 'count',
  input: z.object({ words: z.array(z.string()) }),
  run: ({ words }) => ({ n: words.length }),
})
const double = task({ id: 'double', input: z.object({ n: z.number() }), run: ({ n }) => ({ n: n * 2 }) })

export const pipeline = sequence('pipeline', [parse, count, double])
expectTypeOf<InputOf<typeof pipeline>>().toEqualTypeOf<{ raw: string }>()
expectTypeOf<OutputOf<typeof pipeline>>().toEqualTypeOf<{ n: number }>()

// @ts-expect-error count's output { n } does not fit parse's input { raw }
sequence('broken', [count, parse])
