/**
 * The grammar of a change-feed cursor (`ChangeRow.cursor`, `Storage.changeCursor`): one or two
 * runs of digits joined by a dot. Cursors are opaque outside the adapter that made them and
 * compared for equality only; this grammar only lets callers reject junk (a Last-Event-ID
 * header, a query argument) before it reaches the database.
 */
export const CHANGE_CURSOR_PATTERN = /^\d{1,20}(\.\d{1,20})?$/

/** Whether `value` is a well-formed change cursor; `''` (before the first change) counts as one. */
export function isChangeCursor(value: string): boolean {
  return value === '' || CHANGE_CURSOR_PATTERN.test(value)
}
