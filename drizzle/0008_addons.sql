CREATE TABLE "addon_attachments" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"addon_id" uuid NOT NULL,
	"app_id" uuid NOT NULL,
	"name" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "addons" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"app_id" uuid NOT NULL,
	"name" text NOT NULL,
	"service" text NOT NULL,
	"plan" text NOT NULL,
	"state" text DEFAULT 'provisioning' NOT NULL,
	"provider_id" text,
	"color" text NOT NULL,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "addon_attachments" ADD CONSTRAINT "addon_attachments_addon_id_addons_id_fk" FOREIGN KEY ("addon_id") REFERENCES "public"."addons"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "addon_attachments" ADD CONSTRAINT "addon_attachments_app_id_apps_id_fk" FOREIGN KEY ("app_id") REFERENCES "public"."apps"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "addons" ADD CONSTRAINT "addons_app_id_apps_id_fk" FOREIGN KEY ("app_id") REFERENCES "public"."apps"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "addon_attachments_app_name_key" ON "addon_attachments" USING btree ("app_id","name");--> statement-breakpoint
CREATE INDEX "addon_attachments_addon_idx" ON "addon_attachments" USING btree ("addon_id");--> statement-breakpoint
CREATE UNIQUE INDEX "addons_name_key" ON "addons" USING btree ("name");--> statement-breakpoint
CREATE INDEX "addons_app_idx" ON "addons" USING btree ("app_id");