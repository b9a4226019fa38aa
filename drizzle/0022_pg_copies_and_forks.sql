ALTER TABLE "addons" ADD COLUMN "forked_from" text;--> statement-breakpoint
ALTER TABLE "pg_transfers" ADD COLUMN "fork_addon_id" uuid;--> statement-breakpoint
ALTER TABLE "pg_transfers" ADD COLUMN "account_id" uuid;--> statement-breakpoint
ALTER TABLE "pg_transfers" ADD CONSTRAINT "pg_transfers_fork_addon_id_addons_id_fk" FOREIGN KEY ("fork_addon_id") REFERENCES "public"."addons"("id") ON DELETE set null ON UPDATE no action;