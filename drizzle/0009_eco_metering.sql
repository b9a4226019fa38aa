CREATE TABLE "app_features" (
	"app_id" uuid NOT NULL,
	"name" text NOT NULL,
	"enabled" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "app_features_app_id_name_pk" PRIMARY KEY("app_id","name")
);
--> statement-breakpoint
CREATE TABLE "app_traffic" (
	"app_id" uuid NOT NULL,
	"hour" smallint NOT NULL,
	"requests" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "app_traffic_app_id_hour_pk" PRIMARY KEY("app_id","hour")
);
--> statement-breakpoint
CREATE TABLE "dyno_usage" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"account_id" uuid NOT NULL,
	"app_id" uuid NOT NULL,
	"dyno_id" uuid NOT NULL,
	"dyno_name" text NOT NULL,
	"size" text NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"ended_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "keep_alive" (
	"app_id" uuid PRIMARY KEY NOT NULL,
	"bedtime_start_hour" smallint,
	"last_slot" bigint DEFAULT 0 NOT NULL,
	"last_pinged_at" timestamp with time zone,
	"last_status" integer,
	"last_latency_ms" integer,
	"last_error" text
);
--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "eco_exhausted_until" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "app_features" ADD CONSTRAINT "app_features_app_id_apps_id_fk" FOREIGN KEY ("app_id") REFERENCES "public"."apps"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "app_traffic" ADD CONSTRAINT "app_traffic_app_id_apps_id_fk" FOREIGN KEY ("app_id") REFERENCES "public"."apps"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "dyno_usage" ADD CONSTRAINT "dyno_usage_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "keep_alive" ADD CONSTRAINT "keep_alive_app_id_apps_id_fk" FOREIGN KEY ("app_id") REFERENCES "public"."apps"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "app_features_enabled_idx" ON "app_features" USING btree ("name") WHERE enabled;--> statement-breakpoint
CREATE UNIQUE INDEX "dyno_usage_open_key" ON "dyno_usage" USING btree ("dyno_id") WHERE ended_at is null;--> statement-breakpoint
CREATE INDEX "dyno_usage_account_idx" ON "dyno_usage" USING btree ("account_id","started_at");