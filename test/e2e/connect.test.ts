import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import https from "node:https";
import path from "node:path";
import { Agent, fetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startForwarder, type Forwarder } from "../../src/local/forwarder.ts";
import { freePort } from "../../src/node/ports.ts";
import { api, platform } from "../support/api.ts";
import { appName, closeDb, makeAccount } from "../support/factories.ts";
import { ACCEPT, localSide, startEchoUpstream, via, type EchoUpstream, type LocalSide } from "../support/forwarding.ts";

let side: LocalSide;
/** The test platform, reached as a remote that has its own private CA. */
let forwarder: Forwarder;
let upstream: EchoUpstream;
let upstreamForwarder: Forwarder;

beforeAll(async () => {
  side = await localSide();
  forwarder = await startForwarder({ remote: new URL(platform().apiUrl), port: 0, tls: side.tls, remoteCa: readFileSync(platform().caPath) });
  upstream = await startEchoUpstream(path.join(side.root, "upstream-tls"));
  upstreamForwarder = await startForwarder({ remote: new URL(`https://localhost:${upstream.port}`), port: 0, tls: side.tls, remoteCa: upstream.ca });
});

afterAll(async () => {
  await forwarder?.close();
  await upstreamForwarder?.close();
  await upstream?.close();
  await side?.cleanup();
  await closeDb();
});

describe("startForwarder against the platform", () => {
  it("serves https://localhost:<port>", () => {
    expect(forwarder.port).toBeGreaterThan(0);
    expect(forwarder.url).toBe(`https://localhost:${forwarder.port}`);
  });

  it("GET /account with a token answers the account, and echoes the request id", async () => {
    const account = await makeAccount();
    const requestId = randomUUID();
    const res = await via(side, forwarder, "/account", { token: account.token, headers: { "Request-Id": requestId } });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.body).toMatchObject({ id: account.id, email: account.email });
    expect(res.headers.get("request-id")).toBe(requestId);
  });

  it("POST /apps creates an app that the platform then shows directly", async () => {
    const account = await makeAccount();
    const name = appName("fwd");
    const res = await via(side, forwarder, "/apps", { method: "POST", token: account.token, body: { name } });
    expect(res.status).toBe(201);
    expect(res.body.name).toBe(name);
    const direct = await api(`/apps/${name}`, { token: account.token });
    expect(direct.status).toBe(200);
    expect(direct.body).toMatchObject({ id: res.body.id, name, owner: { email: account.email } });
  });

  it("passes error answers through with their status and {id, message}", async () => {
    const account = await makeAccount();
    const missing = await via(side, forwarder, "/apps/no-such-app-here", { token: account.token });
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual(expect.objectContaining({ id: "not_found", message: expect.any(String) }));
    const anonymous = await via(side, forwarder, "/account");
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toEqual(expect.objectContaining({ id: "unauthorized", message: expect.any(String) }));
  });

  it("answers 502 bad_gateway as JSON when the remote cannot be reached, bodies or not", async () => {
    const dead = await startForwarder({ remote: new URL(`https://127.0.0.1:${await freePort()}`), port: 0, tls: side.tls });
    try {
      for (const init of [{ token: "t" }, { method: "POST", token: "t", body: { name: "x".repeat(200_000) } }]) {
        const res = await via(side, dead, "/apps", init);
        expect(res.status).toBe(502);
        expect(res.headers.get("content-type")).toMatch(/^application\/json/);
        expect(res.body).toEqual({ id: "bad_gateway", message: expect.stringMatching(/ECONNREFUSED/) });
      }
    } finally {
      await dead.close();
    }
  });
});

describe("startForwarder streaming", () => {
  it("streams a 1 MB+ chunked request body (a git push) through intact", async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    let offset = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (offset >= data.length) return controller.close();
        controller.enqueue(data.subarray(offset, (offset += 64 * 1024)));
      },
    });
    const res = await via(side, upstreamForwarder, "/echo", { method: "POST", body, headers: { "Content-Type": "application/x-git-receive-pack-request" } });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ method: "POST", length: data.length, sha256: createHash("sha256").update(data).digest("hex") });
    expect(res.body.headers["transfer-encoding"]).toBe("chunked");
  });

  it("delivers a held event stream's headers and each event as they happen", async () => {
    const events: string[] = [];
    const text = await new Promise<string>((resolve, reject) => {
      const req = https.request({ host: "localhost", port: upstreamForwarder.port, path: "/stream", agent: side.httpsAgent });
      req.on("response", (res) => {
        events.push(`status ${res.statusCode} ${res.headers["content-type"]}`);
        // The remote has sent nothing but headers and waits until the client has seen them.
        upstream.open("headers-seen");
        let all = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          all += chunk;
          events.push(chunk);
          if (all.includes("first")) upstream.open("first-seen");
        });
        res.on("end", () => resolve(all));
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end();
    });
    expect(text).toBe("data: first\n\ndata: second\n\n");
    expect(events).toEqual(["status 200 text/event-stream", "data: first\n\n", "data: second\n\n"]);
  }, 10_000);
});

describe("dynoplane connect", () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    child?.kill("SIGKILL");
  });

  it("prints the export lines for localhost:<port> and serves the remote until Ctrl-C", async () => {
    const port = await freePort();
    const home = path.join(side.root, "home");
    child = spawn(process.execPath, ["bin/dynoplane.js", "connect", platform().apiUrl, "--port", String(port), "--ca", platform().caPath], {
      cwd: process.cwd(),
      env: { ...process.env, DYNOPLANE_HOME: home, DYNOPLANE_REMOTE_CA: "" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stderr!.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child!.on("exit", (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child!.stdout!.on("data", (d) => {
        stdout += d;
        if (stdout.includes("Ctrl-C")) resolve();
      });
      exited.then((code) => reject(new Error(`connect exited ${code}: ${stderr}`)));
    });

    const env = Object.fromEntries([...stdout.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));
    expect(env).toMatchObject({
      HEROKU_HOST: `https://localhost:${port}`,
      HEROKU_GIT_HOST: `localhost:${port}`,
      NODE_EXTRA_CA_CERTS: path.join(home, "tls", "ca.pem"),
      GIT_SSL_CAINFO: path.join(home, "tls", "ca-bundle.pem"),
    });

    // A client that trusts what the export lines name reaches the platform through it.
    const account = await makeAccount();
    const agent = new Agent({ connect: { ca: readFileSync(env.NODE_EXTRA_CA_CERTS!) } });
    const whoami = () => fetch(`${env.HEROKU_HOST}/account`, { headers: { Accept: ACCEPT, Authorization: `Bearer ${account.token}` }, dispatcher: agent });
    try {
      const res = await whoami();
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({ email: account.email });

      child.kill("SIGINT");
      // 130 (128 + SIGINT) is the shell's convention for a run ended by Ctrl-C.
      expect([0, 130]).toContain(await exited);
      child = undefined;
      const after = await whoami().then(
        () => undefined,
        (err: any) => err.cause?.code,
      );
      expect(after).toBe("ECONNREFUSED");
    } finally {
      await agent.close();
    }
  }, 60_000);
});
