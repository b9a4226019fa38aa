import { readFileSync } from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkRemote, startForwarder, type Forwarder } from "../../src/local/forwarder.ts";
import { localSide, startEchoUpstream, via, type EchoUpstream, type LocalSide } from "../support/forwarding.ts";

let side: LocalSide;
let upstream: EchoUpstream;
let upstreamForwarder: Forwarder;

beforeAll(async () => {
  side = await localSide();
  upstream = await startEchoUpstream(path.join(side.root, "upstream-tls"));
  upstreamForwarder = await startForwarder({ remote: new URL(`https://localhost:${upstream.port}`), port: 0, tls: side.tls, remoteCa: upstream.ca });
});

afterAll(async () => {
  await upstreamForwarder?.close();
  await upstream?.close();
  await side?.cleanup();
});

describe("startForwarder relaying", () => {
  it("rewrites Host, adds X-Forwarded-*, drops hop-by-hop headers both ways, keeps the query", async () => {
    // node:https, since fetch refuses to send a Connection header at all.
    const res = await new Promise<{ status: number; headers: Record<string, unknown>; body: any }>((resolve, reject) => {
      const req = https.request({
        host: "localhost",
        port: upstreamForwarder.port,
        path: "/echo?a=1&b=two",
        method: "PUT",
        agent: side.httpsAgent,
        headers: { "X-Custom": "kept", "Proxy-Authorization": "Basic c2VjcmV0", "X-Hop-Req": "1", Connection: "keep-alive, x-hop-req" },
      });
      req.on("response", async (r) => {
        let text = "";
        for await (const chunk of r) text += chunk;
        resolve({ status: r.statusCode!, headers: r.headers, body: JSON.parse(text) });
      });
      req.on("error", reject);
      req.end("hello");
    });
    expect(res.status).toBe(200);
    const { headers, url, method, length } = res.body;
    expect({ url, method, length }).toEqual({ url: "/echo?a=1&b=two", method: "PUT", length: 5 });
    expect(headers.host).toBe(`localhost:${upstream.port}`);
    expect(headers["x-forwarded-proto"]).toBe("https");
    expect(headers["x-forwarded-host"]).toBe(`localhost:${upstreamForwarder.port}`);
    expect(headers["x-forwarded-for"]).toBe("127.0.0.1");
    expect(headers["x-custom"]).toBe("kept");
    expect(headers["proxy-authorization"]).toBeUndefined();
    expect(headers["x-hop-req"]).toBeUndefined();
    expect(res.headers["x-kept"]).toBe("yes");
    expect(res.headers["x-hop"]).toBeUndefined();
  });

  it("streams a request body to the remote before the client has finished sending it", async () => {
    const echoed = await new Promise<string>((resolve, reject) => {
      const req = https.request({ host: "localhost", port: upstreamForwarder.port, path: "/duplex", method: "POST", agent: side.httpsAgent });
      req.on("response", (res) => {
        let all = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          all += chunk;
          // The second half only goes out once the first came back from the remote.
          if (all === "ping-1;") req.end("ping-2;");
        });
        res.on("end", () => resolve(all));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.write("ping-1;");
    });
    expect(echoed).toBe("ping-1;ping-2;");
  }, 10_000);

  it("keeps redirects to the remote on the forwarder", async () => {
    const res = await via(side, upstreamForwarder, "/redirect");
    expect(res.status).toBe(302);
    expect(res.headers.get("location")).toBe(`${upstreamForwarder.url}/echo?from=redirect`);
  });

  it("relays protocol upgrades as a two-way tunnel", async () => {
    const socket = tls.connect({ host: "127.0.0.1", servername: "localhost", port: upstreamForwarder.port, ca: readFileSync(side.tls.caPath) });
    try {
      socket.write(`GET /ws HTTP/1.1\r\nHost: localhost:${upstreamForwarder.port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`);
      let received = "";
      let sent = false;
      socket.setEncoding("utf8");
      await new Promise<void>((resolve, reject) => {
        socket.on("close", () => reject(new Error(`closed after: ${received}`)));
        socket.on("data", (chunk: string) => {
          received += chunk;
          // Bytes written after the 101 must reach the remote and come back.
          if (!sent && received.includes("\r\n\r\n")) (sent = true), socket.write("echo me");
          if (sent && received.endsWith("echo me")) resolve();
        });
      });
      expect(received).toMatch(/^HTTP\/1\.1 101 /);
      expect(received).toContain(`X-Seen-Host: localhost:${upstream.port}`);
      expect(received.endsWith("\r\n\r\necho me")).toBe(true);
    } finally {
      socket.destroy();
    }
  }, 10_000);

  it("verifies the remote's certificate: without its CA the remote is a bad gateway", async () => {
    const untrusting = await startForwarder({ remote: new URL(`https://localhost:${upstream.port}`), port: 0, tls: side.tls });
    try {
      const res = await via(side, untrusting, "/echo");
      expect(res.status).toBe(502);
      expect(res.body).toEqual({ id: "bad_gateway", message: expect.stringMatching(/certificate/i) });
    } finally {
      await untrusting.close();
    }
  });

  it("listens on 127.0.0.1 only", async () => {
    const outward = Object.values(os.networkInterfaces())
      .flat()
      .find((i) => i && i.family === "IPv4" && !i.internal);
    if (!outward) return; // no non-loopback interface to try from
    const refused = await new Promise<string | undefined>((resolve) => {
      const s = tls.connect({ host: outward.address, port: upstreamForwarder.port, rejectUnauthorized: false });
      s.once("secureConnect", () => (s.destroy(), resolve(undefined)));
      s.once("error", (err: NodeJS.ErrnoException) => resolve(err.code));
    });
    expect(refused).toBe("ECONNREFUSED");
  });

  it("refuses plain http remotes except loopback ones, and anything but an origin", async () => {
    expect(() => checkRemote(new URL("http://localhost:5443"))).not.toThrow();
    expect(() => checkRemote(new URL("https://api.example.com"))).not.toThrow();
    expect(() => checkRemote(new URL("http://localhost.example.com"))).toThrow(/https/);
    expect(() => checkRemote(new URL("https://user:pw@api.example.com"))).toThrow(/origin/);
    await expect(startForwarder({ remote: new URL("http://api.example.com"), port: 0, tls: side.tls })).rejects.toThrow(/https/);
    await expect(startForwarder({ remote: new URL("https://api.example.com/v1"), port: 0, tls: side.tls })).rejects.toThrow(/origin/);
    const loopback = await startForwarder({ remote: new URL("http://127.0.0.1:9"), port: 0, tls: side.tls });
    await loopback.close();
  });
});
