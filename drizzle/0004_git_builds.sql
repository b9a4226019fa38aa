CREATE TABLE "builds" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"app_id" uuid NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"source_kind" text NOT NULL,
	"commit" text,
	"source_blob_key" text NOT NULL,
	"source_url" text NOT NULL,
	"source_version" text,
	"source_checksum" text,
	"pack_id" uuid,
	"source_id" uuid,
	"buildpacks" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"stack" text NOT NULL,
	"host_id" uuid,
	"slug_id" uuid,
	"release_id" uuid,
	"error" text,
	"output" text[],
	"created_by" uuid,
	"user_email" text NOT NULL,
	"finished_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "git_packs" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"app_id" uuid NOT NULL,
	"seq" integer NOT NULL,
	"blob_key" text NOT NULL,
	"size" bigint,
	"checksum" text,
	"commit" text NOT NULL,
	"accepted" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "sources" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"account_id" uuid NOT NULL,
	"blob_key" text NOT NULL,
	"size" bigint,
	"checksum" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "apps" ADD COLUMN "repo_head" text;--> statement-breakpoint
ALTER TABLE "apps" ADD COLUMN "buildpacks" jsonb DEFAULT '[]'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "builds" ADD CONSTRAINT "builds_app_id_apps_id_fk" FOREIGN KEY ("app_id") REFERENCES "public"."apps"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "builds" ADD CONSTRAINT "builds_pack_id_git_packs_id_fk" FOREIGN KEY ("pack_id") REFERENCES "public"."git_packs"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "builds" ADD CONSTRAINT "builds_source_id_sources_id_fk" FOREIGN KEY ("source_id") REFERENCES "public"."sources"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "builds" ADD CONSTRAINT "builds_host_id_hosts_id_fk" FOREIGN KEY ("host_id") REFERENCES "public"."hosts"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "builds" ADD CONSTRAINT "builds_created_by_accounts_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."accounts"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "git_packs" ADD CONSTRAINT "git_packs_app_id_apps_id_fk" FOREIGN KEY ("app_id") REFERENCES "public"."apps"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sources" ADD CONSTRAINT "sources_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "builds_app_idx" ON "builds" USING btree ("app_id","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "git_packs_app_seq_key" ON "git_packs" USING btree ("app_id","seq");--> statement-breakpoint
CREATE INDEX "sources_account_idx" ON "sources" USING btree ("account_id");