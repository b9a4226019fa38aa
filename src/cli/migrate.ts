import { runMigrations } from "../node/migrate.ts";

/** `dynoplane migrate`: applies pending migrations to DATABASE_URL. */
export async function run(): Promise<number> {
  const url = process.env.DATABASE_URL;
  if (!url) {
    console.error("Set DATABASE_URL to the control plane's database (for Neon, its pooled or direct postgres:// URL).");
    return 2;
  }
  await runMigrations(url, { webSocketConstructor: (await import("ws")).default });
  console.log("Migrations applied.");
  return 0;
}
