import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env.ts";
import { invalidParams } from "../errors.ts";
import { jsonBody } from "../lib/validate.ts";
import { toDefaultDomainJson, toDomainJson } from "../serializers/domain.ts";
import { findAppForActor } from "../services/apps/apps.ts";
import { requestContext } from "../services/context.ts";
import { addDomain, getDomain, listDomains, removeDomain } from "../services/domains/domains.ts";

const noCertificates = () =>
  invalidParams(
    "Certificates are managed by the platform (automatically for custom domains where the edge issues them); there are no SNI endpoints to choose.",
  );

const createBody = z
  .object({
    hostname: z.string().max(300),
    // What `heroku domains:add` always sends; only null (the platform's certificates) is accepted.
    sni_endpoint: z.string().max(100).nullable().optional(),
  })
  .strict();

const updateBody = z.object({ sni_endpoint: z.string().max(100).nullable() }).strict();

/** `heroku domains`, `domains:add/remove/info/wait/update` and `certs`: custom domains of an app. */
export const domainsRoutes = new Hono<AppEnv>()
  .get("/apps/:app/domains", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    const custom = await listDomains(c.var.db, app.id);
    return c.json([toDefaultDomainJson(app, c.env.APPS_DOMAIN), ...custom.map((d) => toDomainJson(app, d, c.env.APPS_DOMAIN))]);
  })
  .get("/apps/:app/domains/:domain", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    const key = c.req.param("domain").toLowerCase();
    if (key === app.id || key === `${app.name}.${c.env.APPS_DOMAIN}`) return c.json(toDefaultDomainJson(app, c.env.APPS_DOMAIN));
    return c.json(toDomainJson(app, await getDomain(c.var.db, c.env, app, key), c.env.APPS_DOMAIN));
  })
  .post("/apps/:app/domains", jsonBody(createBody), async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    const body = c.req.valid("json");
    if (body.sni_endpoint) throw noCertificates();
    const domain = await addDomain(requestContext(c, c.var.actor), app, body.hostname);
    return c.json(toDomainJson(app, domain, c.env.APPS_DOMAIN), 201);
  })
  .patch("/apps/:app/domains/:domain", jsonBody(updateBody), async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    if (c.req.valid("json").sni_endpoint) throw noCertificates();
    return c.json(toDomainJson(app, await getDomain(c.var.db, c.env, app, c.req.param("domain")), c.env.APPS_DOMAIN));
  })
  .delete("/apps/:app/domains/:domain", async (c) => {
    const app = await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    if (c.req.param("domain").toLowerCase() === `${app.name}.${c.env.APPS_DOMAIN}`) {
      throw invalidParams(`${app.name}.${c.env.APPS_DOMAIN} is the app's own name on the platform and cannot be removed.`);
    }
    const removed = await removeDomain(requestContext(c, c.var.actor), app, c.req.param("domain"));
    return c.json(toDomainJson(app, removed, c.env.APPS_DOMAIN));
  })
  .get("/apps/:app/sni-endpoints", async (c) => {
    await findAppForActor(c.var.db, c.var.actor, c.req.param("app"));
    // Certificates are the edge's (automatic for custom domains); none are uploaded.
    return c.json([]);
  });
