import { Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { toAccountJson } from "../serializers/account.ts";
import { getAccount } from "../services/accounts.ts";

/** `/account`: the caller's own account (also the CLI's particleboard target). */
export const accountRoutes = new Hono<AppEnv>().get("/account", async (c) => {
  return c.json(toAccountJson(await getAccount(c.var.db, c.var.actor.accountId)));
});
