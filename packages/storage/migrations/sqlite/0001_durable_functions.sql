CREATE TABLE `execution_signals` (
	`seq` integer PRIMARY KEY NOT NULL,
	`execution_id` text NOT NULL,
	`name` text NOT NULL,
	`payload` text NOT NULL,
	`created_at` integer NOT NULL,
	`consumed_by` text,
	`consumed_at` integer,
	FOREIGN KEY (`execution_id`) REFERENCES `executions`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `execution_signals_execution_idx` ON `execution_signals` (`execution_id`,`seq`);--> statement-breakpoint
CREATE TABLE `execution_steps` (
	`execution_id` text NOT NULL,
	`position` integer NOT NULL,
	`name` text NOT NULL,
	`kind` text NOT NULL,
	`status` text NOT NULL,
	`value` text,
	`error` text,
	`wake_at` integer,
	`child_id` text,
	`signal_name` text,
	`wakeup_key` text,
	`created_at` integer NOT NULL,
	`completed_at` integer,
	PRIMARY KEY(`execution_id`, `position`),
	FOREIGN KEY (`execution_id`) REFERENCES `executions`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `execution_steps_name_uq` ON `execution_steps` (`execution_id`,`name`);--> statement-breakpoint
CREATE UNIQUE INDEX `execution_steps_wakeup_key_uq` ON `execution_steps` (`wakeup_key`) WHERE "execution_steps"."wakeup_key" IS NOT NULL;--> statement-breakpoint
ALTER TABLE `execution_history` ADD `event` text DEFAULT 'status' NOT NULL;--> statement-breakpoint
ALTER TABLE `execution_history` ADD `name` text;--> statement-breakpoint
ALTER TABLE `executions` ADD `failures` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `executions` ADD `parent_id` text;--> statement-breakpoint
ALTER TABLE `executions` ADD `root_id` text;--> statement-breakpoint
ALTER TABLE `executions` ADD `wakes_parent` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `executions` ADD `deadline_at` integer;--> statement-breakpoint
ALTER TABLE `executions` ADD `wake_pending` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX `executions_waiting_due_idx` ON `executions` (`run_at`) WHERE "executions"."status" = 'waiting';--> statement-breakpoint
CREATE INDEX `executions_deadline_idx` ON `executions` (`deadline_at`) WHERE "executions"."deadline_at" IS NOT NULL AND "executions"."status" IN ('queued', 'waiting');--> statement-breakpoint
CREATE INDEX `executions_parent_idx` ON `executions` (`parent_id`,`id`) WHERE "executions"."parent_id" IS NOT NULL;--> statement-breakpoint
CREATE INDEX `executions_root_idx` ON `executions` (`root_id`,`id`) WHERE "executions"."root_id" IS NOT NULL;