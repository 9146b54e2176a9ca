import pg from 'pg'

/** A table or column name quoted for SQL, as both SQLite and PostgreSQL read it. */
export const quote = (name: string) => pg.escapeIdentifier(name)
