CREATE TABLE "task_queues" (
	"task_id" text COLLATE "C" PRIMARY KEY NOT NULL,
	"paused_at" bigint,
	"updated_at" bigint NOT NULL
);
