-- Custom migration (drizzle-kit generate --custom): table storage parameters drizzle's schema
-- does not model. `executions` is a queue: every row is updated at least twice (claimed,
-- settled), and until VACUUM removes the dead versions, claims and the due-timer query step over
-- their entries in the partial indexes of queued and running rows (npm run bench:due: 11 ms
-- instead of 1.9 ms from enqueue to start right after 400,000 executions ran). PostgreSQL's
-- default waits for a fifth of the table to change; vacuum these two after 1 % and 5 %.
ALTER TABLE "executions" SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_analyze_scale_factor = 0.02);
--> statement-breakpoint
ALTER TABLE "execution_history" SET (autovacuum_vacuum_scale_factor = 0.05);
