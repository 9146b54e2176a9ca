DROP INDEX `executions_claim_idx`;--> statement-breakpoint
CREATE INDEX `executions_claim_idx` ON `executions` (`status`,`task_id`,"priority" desc,`run_at`,`id`);