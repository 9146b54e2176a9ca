CREATE TABLE `execution_history` (
	`seq` integer PRIMARY KEY NOT NULL,
	`execution_id` text NOT NULL,
	`at` integer NOT NULL,
	`from_status` text,
	`to_status` text NOT NULL,
	`attempt` integer NOT NULL,
	`detail` text,
	FOREIGN KEY (`execution_id`) REFERENCES `executions`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `execution_history_execution_idx` ON `execution_history` (`execution_id`,`seq`);--> statement-breakpoint
CREATE TABLE `executions` (
	`id` text PRIMARY KEY NOT NULL,
	`task_id` text NOT NULL,
	`status` text NOT NULL,
	`input` text NOT NULL,
	`output` text,
	`error` text,
	`attempt` integer DEFAULT 0 NOT NULL,
	`max_attempts` integer NOT NULL,
	`timeout_ms` integer NOT NULL,
	`backoff` text NOT NULL,
	`priority` integer DEFAULT 0 NOT NULL,
	`idempotency_key` text,
	`run_at` integer NOT NULL,
	`lease_owner` text,
	`lease_expires_at` integer,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`started_at` integer,
	`finished_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `executions_idempotency_key_uq` ON `executions` (`task_id`,`idempotency_key`) WHERE "executions"."idempotency_key" IS NOT NULL;--> statement-breakpoint
CREATE INDEX `executions_claim_idx` ON `executions` (`status`,"priority" desc,`run_at`,`id`);--> statement-breakpoint
CREATE INDEX `executions_due_idx` ON `executions` (`run_at`) WHERE "executions"."status" = 'queued';--> statement-breakpoint
CREATE INDEX `executions_task_idx` ON `executions` (`task_id`,`id`);--> statement-breakpoint
CREATE INDEX `executions_status_idx` ON `executions` (`status`,`id`);