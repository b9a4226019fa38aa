import { randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import pg from "pg";

/** Every request the stand-in answered, for assertions on what the provider sent. */
export interface NeonCall {
  method: string;
  path: string;
  body: unknown;
}

export interface NeonStandIn {
  /** The API's base, as `NEON_API_URL` (`http://127.0.0.1:<port>/api/v2`). */
  url: string;
  apiKey: string;
  projectId: string;
  branchId: string;
  calls: NeonCall[];
  close(): Promise<void>;
}

/**
 * A stand-in for Neon's API (https://api-docs.neon.tech/reference) that follows its published
 * contract for what the Neon provider calls (roles, databases, reset_password, endpoints:
 * paths, Bearer key, bodies, 201/200/404 answers, `{code, message}` errors) and makes real
 * roles and databases on the Postgres server behind it, because Neon cannot be reached here.
 */
export async function startNeonStandIn(adminUrl: string): Promise<NeonStandIn> {
  const apiKey = `napi_${randomBytes(24).toString("hex")}`;
  const projectId = "small-stand-in-12345678";
  const branchId = "br-stand-in-12345678";
  const calls: NeonCall[] = [];
  const sql = async (text: string) => {
    // The server's administration role has CREATEROLE, no superuser: roles it makes are its own to use.
    const c = new pg.Client({ connectionString: adminUrl, options: "-c createrole_self_grant=set,inherit" });
    await c.connect();
    try {
      return await c.query(text);
    } finally {
      await c.end();
    }
  };
  const now = () => new Date().toISOString();
  const name = (s: string) => {
    if (!/^[a-z][a-z0-9_]{0,62}$/.test(s)) throw Object.assign(new Error(`invalid name ${s}`), { status: 400 });
    return `"${s}"`;
  };

  const server = http.createServer(async (req, res) => {
    const send = (status: number, body: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
    let raw = "";
    for await (const chunk of req) raw += chunk;
    const body = raw ? JSON.parse(raw) : undefined;
    const path = (req.url ?? "").replace(/^\/api\/v2/, "");
    calls.push({ method: req.method!, path, body });
    if (req.headers.authorization !== `Bearer ${apiKey}`) return send(401, { code: "", message: "authentication required" });
    const branch = `/projects/${projectId}/branches/${branchId}`;
    try {
      if (req.method === "GET" && path === `/projects/${projectId}/endpoints`) {
        return send(200, { endpoints: [{ id: "ep-stand-in", host: "ep-stand-in.local.neon.invalid", branch_id: branchId, type: "read_write" }] });
      }
      if (req.method === "POST" && path === `${branch}/roles`) {
        const role = body?.role?.name as string;
        const password = randomBytes(18).toString("base64url");
        await sql(`create role ${name(role)} login password '${password}'`);
        return send(201, { role: { branch_id: branchId, name: role, password, protected: false, created_at: now(), updated_at: now() }, operations: [] });
      }
      if (req.method === "POST" && path === `${branch}/databases`) {
        const db = body?.database?.name as string;
        const owner = body?.database?.owner_name as string;
        await sql(`create database ${name(db)} owner ${name(owner)}`);
        await sql(`revoke all on database ${name(db)} from public`);
        return send(201, {
          database: { id: Date.now(), branch_id: branchId, name: db, owner_name: owner, created_at: now(), updated_at: now() },
          operations: [],
        });
      }
      let m = new RegExp(`^${branch}/roles/([^/]+)/reset_password$`).exec(path);
      if (req.method === "POST" && m) {
        const password = randomBytes(18).toString("base64url");
        const { rowCount } = await sql(`select 1 from pg_roles where rolname = '${m[1]!.replace(/'/g, "")}'`);
        if (!rowCount) return send(404, { code: "", message: "role not found" });
        await sql(`alter role ${name(m[1]!)} password '${password}'`);
        return send(200, { role: { branch_id: branchId, name: m[1], password, protected: false, created_at: now(), updated_at: now() }, operations: [] });
      }
      m = new RegExp(`^${branch}/databases/([^/]+)$`).exec(path);
      if (req.method === "DELETE" && m) {
        const { rowCount } = await sql(`select 1 from pg_database where datname = '${m[1]!.replace(/'/g, "")}'`);
        if (!rowCount) return send(404, { code: "", message: "database not found" });
        await sql(`drop database ${name(m[1]!)} with (force)`);
        return send(200, { database: { branch_id: branchId, name: m[1] }, operations: [] });
      }
      // Neon's "Update a database": a new name (and owner) for it; it has no sessions then.
      if (req.method === "PATCH" && m) {
        const { rowCount } = await sql(`select 1 from pg_database where datname = '${m[1]!.replace(/'/g, "")}'`);
        if (!rowCount) return send(404, { code: "", message: "database not found" });
        const renamed = (body?.database?.name as string | undefined) ?? m[1]!;
        if (renamed !== m[1]) await sql(`alter database ${name(m[1]!)} rename to ${name(renamed)}`);
        if (body?.database?.owner_name) await sql(`alter database ${name(renamed)} owner to ${name(body.database.owner_name as string)}`);
        return send(200, { database: { branch_id: branchId, name: renamed, updated_at: now() }, operations: [] });
      }
      m = new RegExp(`^${branch}/roles/([^/]+)$`).exec(path);
      if (req.method === "DELETE" && m) {
        const { rowCount } = await sql(`select 1 from pg_roles where rolname = '${m[1]!.replace(/'/g, "")}'`);
        if (!rowCount) return send(404, { code: "", message: "role not found" });
        await sql(`drop role ${name(m[1]!)}`);
        return send(200, { role: { branch_id: branchId, name: m[1] }, operations: [] });
      }
      return send(404, { code: "", message: "not found" });
    } catch (err) {
      return send((err as { status?: number }).status ?? 500, { code: "", message: (err as Error).message });
    }
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/api/v2`,
    apiKey,
    projectId,
    branchId,
    calls,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
