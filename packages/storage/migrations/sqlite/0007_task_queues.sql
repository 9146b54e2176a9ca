CREATE TABLE `task_queues` (
	`task_id` text PRIMARY KEY NOT NULL,
	`paused_at` integer,
	`updated_at` integer NOT NULL
);
