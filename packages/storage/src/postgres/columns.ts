export { executionColumns } from '../execution-columns'

/** Constant strings as an SQL list (`'a', 'b'`), for IN lists built from core's constants. */
export function sqlStrings(values: readonly string[]): string {
  return values.map((v) => `'${v.replaceAll("'", "''")}'`).join(', ')
}
