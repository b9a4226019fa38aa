ALTER TABLE "dynos" ADD COLUMN "attach" text;--> statement-breakpoint
ALTER TABLE "hosts" ADD COLUMN "rendezvous" text;