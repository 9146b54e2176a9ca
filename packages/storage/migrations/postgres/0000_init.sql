CREATE TABLE "events" (
	"id" uuid PRIMARY KEY NOT NULL,
	"type" text COLLATE "C" NOT NULL,
	"payload" text NOT NULL,
	"created_at" bigint NOT NULL,
	"execution_ids" text NOT NULL,
	"publish_id" text COLLATE "C"
);
--> statement-breakpoint
CREATE TABLE "execution_history" (
	"seq" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "execution_history_seq_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"xid" "xid8" DEFAULT pg_current_xact_id() NOT NULL,
	"execution_id" uuid NOT NULL,
	"at" bigint NOT NULL,
	"from_status" text,
	"to_status" text NOT NULL,
	"attempt" integer NOT NULL,
	"detail" text,
	"event" text DEFAULT 'status' NOT NULL,
	"name" text
);
--> statement-breakpoint
CREATE TABLE "execution_signals" (
	"seq" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "execution_signals_seq_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"execution_id" uuid NOT NULL,
	"name" text NOT NULL,
	"payload" text NOT NULL,
	"created_at" bigint NOT NULL,
	"consumed_by" text,
	"consumed_at" bigint
);
--> statement-breakpoint
CREATE TABLE "execution_steps" (
	"execution_id" uuid NOT NULL,
	"position" integer NOT NULL,
	"name" text COLLATE "C" NOT NULL,
	"kind" text NOT NULL,
	"status" text NOT NULL,
	"value" text,
	"error" text,
	"wake_at" bigint,
	"child_id" uuid,
	"signal_name" text,
	"wakeup_key" text COLLATE "C",
	"created_at" bigint NOT NULL,
	"completed_at" bigint,
	CONSTRAINT "execution_steps_execution_id_position_pk" PRIMARY KEY("execution_id","position")
);
--> statement-breakpoint
CREATE TABLE "executions" (
	"id" uuid PRIMARY KEY NOT NULL,
	"task_id" text COLLATE "C" NOT NULL,
	"status" text NOT NULL,
	"input" text NOT NULL,
	"output" text,
	"error" text,
	"attempt" integer DEFAULT 0 NOT NULL,
	"failures" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer NOT NULL,
	"recoveries" integer DEFAULT 0 NOT NULL,
	"max_recoveries" integer DEFAULT 5 NOT NULL,
	"claimed_at" bigint,
	"timeout_ms" integer NOT NULL,
	"backoff" text NOT NULL,
	"priority" integer DEFAULT 0 NOT NULL,
	"idempotency_key" text COLLATE "C",
	"run_at" bigint NOT NULL,
	"lease_owner" text,
	"lease_expires_at" bigint,
	"created_at" bigint NOT NULL,
	"updated_at" bigint NOT NULL,
	"started_at" bigint,
	"finished_at" bigint,
	"parent_id" uuid,
	"root_id" uuid,
	"wakes_parent" smallint DEFAULT 0 NOT NULL,
	"deadline_at" bigint,
	"wake_pending" smallint DEFAULT 0 NOT NULL,
	"generation" integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE INDEX "events_type_idx" ON "events" USING btree ("type","id");--> statement-breakpoint
CREATE UNIQUE INDEX "events_publish_id_uq" ON "events" USING btree ("publish_id") WHERE "events"."publish_id" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "events_created_idx" ON "events" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "execution_history_execution_idx" ON "execution_history" USING btree ("execution_id","seq");--> statement-breakpoint
CREATE INDEX "execution_history_changes_idx" ON "execution_history" USING btree ("xid","seq") WHERE "execution_history"."event" = 'status';--> statement-breakpoint
CREATE INDEX "execution_signals_execution_idx" ON "execution_signals" USING btree ("execution_id","seq");--> statement-breakpoint
CREATE UNIQUE INDEX "execution_steps_name_uq" ON "execution_steps" USING btree ("execution_id","name");--> statement-breakpoint
CREATE UNIQUE INDEX "execution_steps_wakeup_key_uq" ON "execution_steps" USING btree ("wakeup_key") WHERE "execution_steps"."wakeup_key" IS NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "executions_idempotency_key_uq" ON "executions" USING btree ("task_id","idempotency_key") WHERE "executions"."idempotency_key" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "executions_claim_idx" ON "executions" USING btree ("task_id","priority" DESC NULLS LAST,"run_at","id") WHERE "executions"."status" = 'queued';--> statement-breakpoint
CREATE INDEX "executions_due_idx" ON "executions" USING btree ("run_at") WHERE "executions"."status" = 'queued';--> statement-breakpoint
CREATE INDEX "executions_waiting_due_idx" ON "executions" USING btree ("run_at") WHERE "executions"."status" = 'waiting';--> statement-breakpoint
CREATE INDEX "executions_deadline_idx" ON "executions" USING btree ("deadline_at") WHERE "executions"."deadline_at" IS NOT NULL AND "executions"."status" IN ('queued', 'waiting');--> statement-breakpoint
CREATE INDEX "executions_lease_idx" ON "executions" USING btree ("lease_expires_at") WHERE "executions"."status" = 'running';--> statement-breakpoint
CREATE INDEX "executions_parent_idx" ON "executions" USING btree ("parent_id","id") WHERE "executions"."parent_id" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "executions_root_idx" ON "executions" USING btree ("root_id","id") WHERE "executions"."root_id" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "executions_task_idx" ON "executions" USING btree ("task_id","id");--> statement-breakpoint
CREATE INDEX "executions_finished_idx" ON "executions" USING btree ("finished_at","status","task_id") WHERE "executions"."finished_at" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "executions_started_idx" ON "executions" USING btree ("started_at","task_id") WHERE "executions"."started_at" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "executions_retention_idx" ON "executions" USING btree ("task_id","finished_at") WHERE "executions"."parent_id" IS NULL AND "executions"."finished_at" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "executions_status_idx" ON "executions" USING btree ("status","id");