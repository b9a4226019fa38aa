ALTER TABLE "pg_transfers" ADD COLUMN "upload_id" text;--> statement-breakpoint
ALTER TABLE "pg_transfers" ADD COLUMN "uploaded_parts" jsonb DEFAULT '[]'::jsonb NOT NULL;