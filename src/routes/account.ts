import { Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { ApiError } from "../errors.ts";
import { toAccountJson } from "../serializers/account.ts";
import { getAccount } from "../services/access/accounts.ts";
import { ecoQuota } from "../services/eco/eco.ts";

/** `/account`: the caller's own account (also the CLI's particleboard target), and its eco dyno hours. */
export const accountRoutes = new Hono<AppEnv>()
  .get("/account", async (c) => {
    return c.json(toAccountJson(await getAccount(c.var.db, c.var.actor.accountId)));
  })
  // `heroku ps` for an eco app: the pool and this month's use, in seconds. Only one's own:
  // any other account is not found, whoever it is.
  .get("/account/actions/get-quota", async (c) => {
    const account = await getAccount(c.var.db, c.var.actor.accountId);
    return c.json(await ecoQuota(c.var.db, c.env, account, new Date()));
  })
  .get("/accounts/:account/actions/get-quota", async (c) => {
    const account = await getAccount(c.var.db, c.var.actor.accountId);
    const asked = c.req.param("account").toLowerCase();
    if (asked !== account.id && asked !== account.email && asked !== "~") throw new ApiError("not_found", "Couldn't find that account.", "account");
    return c.json(await ecoQuota(c.var.db, c.env, account, new Date()));
  });
