import path from "node:path";
import { openDb } from "../db/client.ts";
import { createHost } from "../services/fleet/hosts.ts";
import { localDatabaseUrl } from "../local/running.ts";

/**
 * `dynoplane hosts:create NAME`: registers a machine that will run dynos and prints the
 * secret its agent starts with (`dynoplane host --secret ...`). Only a hash is kept.
 */
export async function run(args: string[]): Promise<number> {
  const name = args[0];
  if (!name || !/^[a-z0-9][a-z0-9.-]{0,62}$/i.test(name)) {
    console.error("usage: dynoplane hosts:create NAME   (letters, digits, dots and dashes)");
    return 2;
  }
  const url = process.env.DATABASE_URL ?? (await localDatabaseUrl(path.resolve(process.env.DYNOPLANE_HOME ?? ".dynoplane")));
  const handle = await openDb(url, { webSocketConstructor: (await import("ws")).default });
  try {
    const { host, secret } = await createHost(handle.db, name);
    console.log(`Registered host ${host.name} (${host.id}).`);
    console.log(
      `Start its agent with:\n  DYNOPLANE_HOST_SECRET=${secret} npx dynoplane host --control-plane https://<api host> --public-url https://<this host>:5100`,
    );
    return 0;
  } finally {
    await handle.close();
  }
}
