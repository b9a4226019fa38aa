CREATE TABLE "pg_backup_schedules" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"addon_id" uuid NOT NULL,
	"name" text NOT NULL,
	"hour" integer NOT NULL,
	"timezone" text NOT NULL,
	"last_day" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "pg_backup_schedules" ADD CONSTRAINT "pg_backup_schedules_addon_id_addons_id_fk" FOREIGN KEY ("addon_id") REFERENCES "public"."addons"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "pg_backup_schedules_addon_key" ON "pg_backup_schedules" USING btree ("addon_id");