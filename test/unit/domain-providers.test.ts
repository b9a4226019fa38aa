import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiError } from "../../src/errors.ts";
import { customHostname } from "../../src/router/index.ts";
import { CloudflareHostnames, customHostnames, LocalHostnames } from "../../src/services/domains/providers.ts";
import { normalizeHostname } from "../../src/services/domains/domains.ts";

/**
 * A stand-in for Cloudflare's Custom Hostnames API (zones/{zone_id}/custom_hostnames, as
 * https://developers.cloudflare.com/api/resources/custom_hostnames/ publishes it: Bearer
 * token, `{success, errors, result}` envelopes, 409 with code 1406 for a duplicate), since
 * Cloudflare cannot be reached here. A hostname turns active, with its certificate, on the
 * second look.
 */
async function startCloudflareStandIn(token: string, zone: string) {
  const made = new Map<string, { id: string; hostname: string; looks: number }>();
  const calls: Array<{ method: string; path: string; body: unknown }> = [];
  const server = http.createServer(async (req, res) => {
    let raw = "";
    for await (const chunk of req) raw += chunk;
    const body = raw ? JSON.parse(raw) : undefined;
    const path = req.url ?? "";
    calls.push({ method: req.method!, path, body });
    const send = (status: number, payload: unknown) => res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(payload));
    const fail = (status: number, code: number, message: string) => send(status, { success: false, errors: [{ code, message }], messages: [], result: null });
    if (req.headers.authorization !== `Bearer ${token}`) return fail(403, 10000, "Authentication error");
    const base = `/client/v4/zones/${zone}/custom_hostnames`;
    const shape = (h: { id: string; hostname: string; looks: number }) => {
      const active = h.looks >= 2;
      return {
        id: h.id,
        hostname: h.hostname,
        status: active ? "active" : "pending",
        ssl: { status: active ? "active" : "pending_validation", method: "http", type: "dv" },
      };
    };
    if (req.method === "POST" && path === base) {
      if ([...made.values()].some((h) => h.hostname === body.hostname)) return fail(409, 1406, "Duplicate custom hostname found.");
      if (body.ssl?.method !== "http" || body.ssl?.type !== "dv") return fail(400, 1400, "Unsupported SSL settings.");
      const h = { id: `cf-${made.size + 1}`, hostname: body.hostname, looks: 1 };
      made.set(h.id, h);
      return send(201, { success: true, errors: [], messages: [], result: shape(h) });
    }
    const one = made.get(path.slice(base.length + 1));
    if (!path.startsWith(`${base}/`) || !one) return fail(404, 1436, "The custom hostname was not found.");
    if (req.method === "GET") {
      one.looks++;
      return send(200, { success: true, errors: [], messages: [], result: shape(one) });
    }
    if (req.method === "DELETE") {
      made.delete(one.id);
      return send(200, { success: true, errors: [], messages: [], result: { id: one.id } });
    }
    return fail(405, 10405, "Method not allowed");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/client/v4`;
  return { url, calls, made, close: () => new Promise<void>((r) => server.close(() => r())) };
}

describe("Cloudflare for SaaS custom hostnames", () => {
  let cf: Awaited<ReturnType<typeof startCloudflareStandIn>>;
  const token = "cf-token-for-tests";
  const zone = "023e105f4ecef8ad9ca31a8372d0c353";
  const provider = () => new CloudflareHostnames({ apiUrl: cf.url, apiToken: token, zoneId: zone, target: "edge.dynoplane.example" });

  beforeAll(async () => {
    cf = await startCloudflareStandIn(token, zone);
  });
  afterAll(() => cf.close());

  it("registers a hostname for HTTP validation and a DV certificate, then follows it to active", async () => {
    const added = await provider().add("www.shop.example");
    expect(cf.calls.at(-1)).toEqual({
      method: "POST",
      path: `/client/v4/zones/${zone}/custom_hostnames`,
      body: { hostname: "www.shop.example", ssl: { method: "http", type: "dv" } },
    });
    expect(added).toEqual({ providerId: "cf-1", status: "pending", dnsTarget: "edge.dynoplane.example", acmStatus: "pending", acmStatusReason: null });
    expect(await provider().refresh("cf-1")).toMatchObject({ status: "succeeded", acmStatus: "ok" });
    await provider().remove("cf-1");
    expect(cf.made.size).toBe(0);
    await provider().remove("cf-1"); // already gone: nothing to do
  });

  it("turns Cloudflare's refusals into Heroku's errors", async () => {
    await provider().add("api.shop.example");
    const dup = await provider()
      .add("api.shop.example")
      .catch((e: ApiError) => e);
    expect(dup).toBeInstanceOf(ApiError);
    expect((dup as ApiError).id).toBe("invalid_params");
    expect((dup as ApiError).message).toContain("Duplicate custom hostname found.");
    const denied = await new CloudflareHostnames({ apiUrl: cf.url, apiToken: "wrong", zoneId: zone, target: "edge.dynoplane.example" })
      .add("x.shop.example")
      .catch((e: ApiError) => e);
    expect((denied as ApiError).id).toBe("unavailable");
    const down = await new CloudflareHostnames({ apiUrl: "http://127.0.0.1:9/client/v4", apiToken: token, zoneId: zone, target: "t" })
      .add("y.shop.example")
      .catch((e: ApiError) => e);
    expect((down as ApiError).id).toBe("unavailable");
  });

  it("is chosen only when the token, the zone and the target are all set", () => {
    expect(customHostnames({ CLOUDFLARE_API_TOKEN: "t", CLOUDFLARE_ZONE_ID: "z", CUSTOM_HOSTNAME_TARGET: "edge.example" })).toBeInstanceOf(CloudflareHostnames);
    expect(customHostnames({ CLOUDFLARE_API_TOKEN: "t", CLOUDFLARE_ZONE_ID: "z" })).toBeInstanceOf(LocalHostnames);
    expect(customHostnames({})).toBeInstanceOf(LocalHostnames);
  });
});

describe("hostnames", () => {
  it.each([
    ["WWW.Example.COM.", "www.example.com"],
    [" shop.example.co.uk ", "shop.example.co.uk"],
    ["*.example.com", "*.example.com"],
    ["xn--bcher-kva.example", "xn--bcher-kva.example"],
  ])("keeps %j as %j", (input, stored) => expect(normalizeHostname(input)).toBe(stored));

  it.each(["", "example", "1.2.3.4", "-a.example.com", "a_b.example.com", "www.*.example.com", `${"a".repeat(64)}.com`, `${"a.".repeat(127)}com`])(
    "refuses %j",
    (input) => expect(() => normalizeHostname(input)).toThrow(/is not a domain name/),
  );

  it("routes only names that can be custom domains", () => {
    expect(customHostname("www.shop.example:443", "localhost:5443")).toBe("www.shop.example");
    expect(customHostname("Shop.Example.", "localhost:5443")).toBe("shop.example");
    for (const host of [undefined, "localhost:5443", "localhost", "127.0.0.1:5443", "[::1]:5443", "intranet"]) {
      expect(customHostname(host, "localhost:5443")).toBeNull();
    }
    expect(customHostname("api.dynoplane.example", "api.dynoplane.example")).toBeNull();
  });
});
