ALTER TABLE `executions` ADD `recoveries` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE `executions` ADD `max_recoveries` integer DEFAULT 5 NOT NULL;--> statement-breakpoint
ALTER TABLE `executions` ADD `claimed_at` integer;