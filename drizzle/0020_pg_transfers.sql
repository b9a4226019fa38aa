CREATE TABLE "pg_transfers" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"app_id" uuid NOT NULL,
	"num" integer NOT NULL,
	"kind" text NOT NULL,
	"addon_id" uuid,
	"from_name" text NOT NULL,
	"to_name" text NOT NULL,
	"backup_id" uuid,
	"scheduled" boolean DEFAULT false NOT NULL,
	"host_id" uuid,
	"blob_key" text,
	"source_bytes" bigint,
	"processed_bytes" bigint DEFAULT 0 NOT NULL,
	"warnings" integer DEFAULT 0 NOT NULL,
	"succeeded" boolean DEFAULT false NOT NULL,
	"logs" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"canceled_at" timestamp with time zone,
	"deleted_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "pg_transfers" ADD CONSTRAINT "pg_transfers_app_id_apps_id_fk" FOREIGN KEY ("app_id") REFERENCES "public"."apps"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "pg_transfers" ADD CONSTRAINT "pg_transfers_addon_id_addons_id_fk" FOREIGN KEY ("addon_id") REFERENCES "public"."addons"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "pg_transfers" ADD CONSTRAINT "pg_transfers_host_id_hosts_id_fk" FOREIGN KEY ("host_id") REFERENCES "public"."hosts"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "pg_transfers_app_num_key" ON "pg_transfers" USING btree ("app_id","num");--> statement-breakpoint
CREATE INDEX "pg_transfers_addon_idx" ON "pg_transfers" USING btree ("addon_id");