ALTER TABLE "dynos" ADD COLUMN "previous_host_id" uuid;--> statement-breakpoint
ALTER TABLE "dynos" ADD COLUMN "previous_instance" uuid;--> statement-breakpoint
ALTER TABLE "hosts" ADD COLUMN "draining_since" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "hosts" ADD COLUMN "agent_version" text;--> statement-breakpoint
ALTER TABLE "dynos" ADD CONSTRAINT "dynos_previous_host_id_hosts_id_fk" FOREIGN KEY ("previous_host_id") REFERENCES "public"."hosts"("id") ON DELETE set null ON UPDATE no action;