CREATE TABLE `events` (
	`id` text PRIMARY KEY NOT NULL,
	`type` text NOT NULL,
	`payload` text NOT NULL,
	`created_at` integer NOT NULL,
	`execution_ids` text NOT NULL,
	`publish_id` text
);
--> statement-breakpoint
CREATE INDEX `events_type_idx` ON `events` (`type`,`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `events_publish_id_uq` ON `events` (`publish_id`) WHERE "events"."publish_id" IS NOT NULL;