CREATE TABLE "dynos" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"app_id" uuid NOT NULL,
	"release_id" uuid NOT NULL,
	"name" text NOT NULL,
	"type" text NOT NULL,
	"command" text NOT NULL,
	"size" text NOT NULL,
	"extra_env" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"host_id" uuid,
	"instance" uuid DEFAULT gen_random_uuid() NOT NULL,
	"desired" text DEFAULT 'up' NOT NULL,
	"state" text DEFAULT 'starting' NOT NULL,
	"port" integer,
	"exit_code" integer,
	"state_changed_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "formations" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"app_id" uuid NOT NULL,
	"type" text NOT NULL,
	"quantity" integer DEFAULT 0 NOT NULL,
	"size" text DEFAULT 'Eco' NOT NULL,
	"command" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "hosts" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"secret_hash" text NOT NULL,
	"url" text,
	"capacity_mb" integer DEFAULT 0 NOT NULL,
	"state" text DEFAULT 'down' NOT NULL,
	"last_heartbeat_at" timestamp with time zone,
	"dropped_log_lines" bigint DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "slugs" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"app_id" uuid NOT NULL,
	"blob_key" text NOT NULL,
	"size" bigint,
	"checksum" text,
	"process_types" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"stack" text DEFAULT 'heroku-24' NOT NULL,
	"commit" text,
	"commit_description" text,
	"buildpack_provided_description" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "apps" ADD COLUMN "last_request_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "dynos" ADD CONSTRAINT "dynos_app_id_apps_id_fk" FOREIGN KEY ("app_id") REFERENCES "public"."apps"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "dynos" ADD CONSTRAINT "dynos_release_id_releases_id_fk" FOREIGN KEY ("release_id") REFERENCES "public"."releases"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "dynos" ADD CONSTRAINT "dynos_host_id_hosts_id_fk" FOREIGN KEY ("host_id") REFERENCES "public"."hosts"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "formations" ADD CONSTRAINT "formations_app_id_apps_id_fk" FOREIGN KEY ("app_id") REFERENCES "public"."apps"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "slugs" ADD CONSTRAINT "slugs_app_id_apps_id_fk" FOREIGN KEY ("app_id") REFERENCES "public"."apps"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "dynos_app_name_key" ON "dynos" USING btree ("app_id","name");--> statement-breakpoint
CREATE INDEX "dynos_host_idx" ON "dynos" USING btree ("host_id");--> statement-breakpoint
CREATE UNIQUE INDEX "formations_app_type_key" ON "formations" USING btree ("app_id","type");--> statement-breakpoint
CREATE UNIQUE INDEX "hosts_name_key" ON "hosts" USING btree ("name");--> statement-breakpoint
CREATE UNIQUE INDEX "hosts_secret_hash_key" ON "hosts" USING btree ("secret_hash");--> statement-breakpoint
CREATE INDEX "hosts_state_idx" ON "hosts" USING btree ("state");--> statement-breakpoint
CREATE INDEX "slugs_app_idx" ON "slugs" USING btree ("app_id");