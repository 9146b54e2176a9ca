/**
 * Runs `fn` after the current event-loop turn's I/O callbacks (setImmediate where the runtime
 * has it). Group commit relies on it: work produced in one turn is written together.
 */
export const defer: (fn: () => void) => void =
  typeof setImmediate === 'function' ? (fn) => void setImmediate(fn) : (fn) => void setTimeout(fn, 0)
