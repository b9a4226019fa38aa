CREATE TABLE "account_limits" (
	"account_id" uuid PRIMARY KEY NOT NULL,
	"apps" integer,
	"addons" integer,
	"one_off_dynos" integer,
	"dynos_per_app" integer,
	"memory_share" double precision,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "account_limits" ADD CONSTRAINT "account_limits_account_id_accounts_id_fk" FOREIGN KEY ("account_id") REFERENCES "public"."accounts"("id") ON DELETE cascade ON UPDATE no action;