import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { seal, unseal } from "../../src/lib/sealed.ts";
import { checkWebhook, RETRY_DELAYS_S, webhookSignature } from "../../src/services/webhooks/webhooks.ts";

const env = { API_HOST: "api.dynoplane.example", APPS_DOMAIN: "apps.dynoplane.example", DRAIN_ALLOW_HOSTS: "" };

describe("webhook secrets and signatures", () => {
  it("seals a secret so only the platform's key opens it, differently each time", async () => {
    const a = await seal("platform key one", "s3cret");
    const b = await seal("platform key one", "s3cret");
    expect(a).not.toBe(b);
    expect(a).not.toContain("s3cret");
    expect(await unseal("platform key one", a)).toBe("s3cret");
    await expect(unseal("platform key two", a)).rejects.toThrow();
    const [v, iv, body] = a.split(".");
    // One character of the ciphertext changed (the one before the last: the last may be padding bits).
    const flipped = `${v}.${iv}.${body!.slice(0, -2)}${body!.at(-2) === "A" ? "B" : "A"}${body!.slice(-1)}`;
    await expect(unseal("platform key one", flipped)).rejects.toThrow();
  });

  it("signs as Heroku does: base64 of the HMAC-SHA256 of the raw body", async () => {
    const body = '{"action":"create","resource":"release"}';
    expect(await webhookSignature("topsecret", body)).toBe(createHmac("sha256", "topsecret").update(body).digest("base64"));
  });

  it("backs off from seconds to an hour", () => {
    expect(RETRY_DELAYS_S[0]).toBeLessThan(RETRY_DELAYS_S.at(-1)!);
    expect([...RETRY_DELAYS_S].sort((x, y) => x - y)).toEqual(RETRY_DELAYS_S);
  });
});

describe("what a webhook may be", () => {
  it.each([
    [{ url: "https://hooks.example.com/x", include: ["api:release", "dyno"], level: "sync" }, null],
    [{ url: "http://hooks.example.com/x" }, "must use https"],
    [{ url: "https://169.254.169.254/latest" }, "private, loopback or link-local"],
    [{ url: "https://API.dynoplane.example./hook" }, "the platform itself"],
    [{ url: "https://user:pw@hooks.example.com/" }, "credentials"],
    [{ include: ["api:release", "api:addon"] }, "api:addon"],
    [{ include: [] }, "at least one entity"],
    [{ level: "always" }, "notify or sync"],
    [{ secret: "" }, "1 to 256 characters"],
  ])("%j", (input, problem) => {
    if (problem === null) expect(() => checkWebhook(input, env)).not.toThrow();
    else expect(() => checkWebhook(input, env)).toThrow(problem);
  });
});
