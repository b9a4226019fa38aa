CREATE TABLE "log_drains" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"app_id" uuid NOT NULL,
	"url" text NOT NULL,
	"token" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "log_drains" ADD CONSTRAINT "log_drains_app_id_apps_id_fk" FOREIGN KEY ("app_id") REFERENCES "public"."apps"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "log_drains_app_url_key" ON "log_drains" USING btree ("app_id","url");--> statement-breakpoint
CREATE UNIQUE INDEX "log_drains_token_key" ON "log_drains" USING btree ("token");--> statement-breakpoint
CREATE INDEX "log_drains_app_idx" ON "log_drains" USING btree ("app_id");