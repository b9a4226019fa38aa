import { randomUUID } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import tls from "node:tls";
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAgent, type Agent } from "../../src/agent/index.ts";
import { slugCachePath } from "../../src/agent/slug.ts";
import type { Supervisor } from "../../src/agent/supervisor.ts";
import { ensureLocalTls, type LocalTls } from "../../src/local/tls.ts";
import type { DesiredDyno, LogLine } from "../../src/protocol/host.ts";
import { alive, buildSlug, desiredDyno, request, supervisorFixture, tempDir, waitFor } from "./support.ts";

const texts = (lines: LogLine[], source: LogLine["source"]) => lines.filter((l) => l.source === source).map((l) => l.text);

/** Both ends of a loopback TCP connection: the dyno gets one, the test plays the client on the other. */
async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const accepted = new Promise<net.Socket>((r) => server.once("connection", r));
  const client = net.connect((server.address() as net.AddressInfo).port, "127.0.0.1");
  const [dynoSide] = await Promise.all([accepted, new Promise((r) => client.once("connect", r))]);
  server.close();
  return [dynoSide, client];
}

/** A client's view of a session: everything received, and when the connection ended. */
function collect(socket: net.Socket | tls.TLSSocket) {
  let received = "";
  const waiters = new Set<() => void>();
  socket.on("data", (d: Buffer) => {
    received += d.toString("utf8");
    for (const w of waiters) w();
  });
  socket.on("error", () => {});
  const closed = new Promise<void>((r) => socket.once("close", () => r()));
  return {
    received: () => received,
    closed,
    until: (pattern: RegExp, timeoutMs = 15_000) => waitFor(`${pattern} in ${JSON.stringify(received)}`, () => pattern.test(received), timeoutMs),
  };
}

/** Whether a process runs `sleep` (the commands below start it from a shell). */
function runsSleep(pid: number): boolean {
  try {
    return path.basename(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0] ?? "") === "sleep";
  } catch {
    return false;
  }
}

describe("attached one-off dynos (supervisor)", () => {
  const { start } = supervisorFixture();
  const attachDyno = (over: Partial<DesiredDyno>) => desiredDyno({ name: "run.5150", type: "run", attach: "pipes", ...over });

  it("runs on pipes: greets first, carries stdin until \\u0004, merges stdout and stderr, ends with the command", async () => {
    const { sup, lines } = await start();
    const dyno = attachDyno({ command: 'cat; echo "to stderr" >&2; echo "FOO is $FOO on $DYNO"; exit 3', env: { FOO: "bar" } });
    sup.ensure(dyno);
    expect(sup.inspect(dyno.id)?.state).toBe("starting");
    const [dynoSide, client] = await socketPair();
    const session = collect(client);
    expect(await sup.attach(dyno.id, dynoSide)).toBe(true);
    await session.until(/^rendezvous\r\n/);
    // The CLI writes stdin after the greeting, then \u0004 at its end; what follows is not input.
    client.write("line one\nline two\n\u0004ignored");
    await session.closed;
    expect(session.received()).toBe("rendezvous\r\nline one\nline two\nto stderr\nFOO is bar on run.5150\n");
    // The session's output is the client's; the log gets Heroku's state lines only.
    expect(texts(lines, "app")).toEqual([]);
    expect(texts(lines, "heroku")).toEqual(
      expect.arrayContaining([
        "Starting process with command `" + dyno.command + "`",
        "State changed from starting to up",
        "Process exited with status 3",
        "State changed from up to complete",
      ]),
    );
    await waitFor("the exit reported", () => sup.observed().find((o) => o.id === dyno.id && o.state === "down" && o.exit_code === 3));
    expect(sup.inspect(dyno.id)).toBeUndefined();
  });

  it("runs under a pseudo-terminal of the client's size, with the dyno's shell leading its session", async () => {
    const { sup } = await start();
    const dyno = attachDyno({
      attach: "tty",
      command: "tty; stty size; echo TERM=$TERM; read answer; echo got $answer",
      env: { TERM: "xterm", COLUMNS: "132", LINES: "43" },
    });
    sup.ensure(dyno);
    const [dynoSide, client] = await socketPair();
    const session = collect(client);
    expect(await sup.attach(dyno.id, dynoSide)).toBe(true);
    await session.until(/TERM=xterm/);
    client.write("forty-two\r"); // raw mode sends Enter as \r; the terminal turns it into a line
    await session.closed;
    const out = session.received();
    expect(out).toMatch(/^rendezvous\r\n/);
    // A terminal (bwrap shows the dyno's own as /dev/console), not "not a tty".
    expect(out).toMatch(/^\/dev\/(pts\/\d+|console)\r\n/m);
    expect(out).toContain("43 132\r\n");
    expect(out).toContain("forty-two\r\n"); // the terminal's echo
    expect(out).toContain("got forty-two\r\n");
  });

  it("gives `heroku run -x` the exit status of a command that ends the shell itself", async () => {
    const { sup } = await start();
    const marker = "\uFFFF heroku-command-exit-status:";
    for (const [command, expected] of [
      [`exit 3 ; echo "${marker} $?"`, `rendezvous\r\n${marker} 3\r\n`],
      [`echo hi ; echo "${marker} $?"`, `rendezvous\r\nhi\n${marker} 0\n`], // printed by the command: not repeated
      ["exit 4", "rendezvous\r\n"], // no -x: no marker
    ] as const) {
      const dyno = attachDyno({ command });
      sup.ensure(dyno);
      const [dynoSide, client] = await socketPair();
      const session = collect(client);
      expect(await sup.attach(dyno.id, dynoSide)).toBe(true);
      await session.closed;
      expect(session.received()).toBe(expected);
    }
  });

  it("keeps the dyno through Ctrl-C at a prompt: the interrupt reaches the program, not the dyno", async () => {
    const { sup } = await start();
    const dyno = attachDyno({ attach: "tty", command: "sleep 30; echo after sleep $?; read x; echo done $x" });
    sup.ensure(dyno);
    const [dynoSide, client] = await socketPair();
    const session = collect(client);
    expect(await sup.attach(dyno.id, dynoSide)).toBe(true);
    await session.until(/^rendezvous\r\n/);
    // The interrupt is for `sleep`: it is sent once that program runs, not merely its shell.
    await waitFor("sleep running", () => (sup.inspect(dyno.id)?.sandbox?.tenantPids() ?? []).some(runsSleep));
    client.write("\u0003");
    await session.until(/after sleep 130/);
    client.write("ok\r");
    await session.until(/done ok/);
    await session.closed;
  });

  it("stops the dyno within seconds when its client disconnects, and leaves no process behind", async () => {
    const { sup, lines } = await start();
    const dyno = attachDyno({ attach: "tty", command: "sleep 600" });
    sup.ensure(dyno);
    const [dynoSide, client] = await socketPair();
    const session = collect(client);
    expect(await sup.attach(dyno.id, dynoSide)).toBe(true);
    await session.until(/^rendezvous\r\n/);
    // Up, and its command running (not merely the shell that starts it).
    const info = await waitFor("the command up", () => {
      const seen = sup.inspect(dyno.id);
      return seen?.state === "up" && (seen.sandbox?.tenantPids() ?? []).some(runsSleep) && seen;
    });
    const pids = info.sandbox!.tenantPids();
    expect(pids.length).toBeGreaterThan(0);
    const dropped = Date.now();
    client.destroy();
    await waitFor("the dyno reported down", () => sup.observed().some((o) => o.id === dyno.id && o.state === "down"), 10_000);
    expect(Date.now() - dropped).toBeLessThan(10_000);
    expect(texts(lines, "heroku")).toContain("The client disconnected; stopping the dyno");
    expect(pids.filter(alive)).toEqual([]);
  });

  it("ends a dyno nobody attaches to in time, without ever starting its command", async () => {
    const { sup, lines } = await start({ attachTimeoutMs: 1_500 });
    const dyno = attachDyno({ command: "echo should never run" });
    sup.ensure(dyno);
    await waitFor("the dyno given up", () => sup.observed().some((o) => o.id === dyno.id && o.state === "down"), 10_000);
    expect(texts(lines, "heroku")).toContain("Error: no client attached within 2 seconds; stopping the dyno");
    expect(texts(lines, "heroku").some((t) => t.startsWith("Starting process"))).toBe(false);
    const [dynoSide] = await socketPair();
    expect(await sup.attach(dyno.id, dynoSide, 100)).toBe(false);
  });

  it("takes one client per dyno, and none for a dyno that is not attached", async () => {
    const { sup } = await start();
    const attached = attachDyno({ command: "cat" });
    const detached = desiredDyno({ name: "run.7070", type: "run", command: "sleep 600" });
    sup.ensure(attached);
    sup.ensure(detached);
    const [first, client] = await socketPair();
    const session = collect(client);
    expect(await sup.attach(attached.id, first)).toBe(true);
    const [second] = await socketPair();
    expect(await sup.attach(attached.id, second)).toBe(false);
    const [third] = await socketPair();
    expect(await sup.attach(detached.id, third)).toBe(false);
    expect(await sup.attach(randomUUID(), third, 200)).toBe(false);
    // The first session is untouched by the refused ones.
    client.write("still here\n");
    await session.until(/still here\n$/);
    expect(sup.inspect(detached.id)?.state).toBe("up");
  });
});

describe("the rendezvous server", () => {
  const hostId = randomUUID();
  let privateKey: CryptoKey;
  let otherKey: CryptoKey;
  let agent: Agent;
  let workDir: string;
  let local: LocalTls;
  let slugDir: string;
  let slugId: string;

  const sign = (c: { sub: string; purpose?: string; aud?: string; iat?: number; exp?: number; jti?: string; key?: CryptoKey }) => {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ purpose: c.purpose ?? "rendezvous" })
      .setProtectedHeader({ alg: "EdDSA" })
      .setIssuer("dynoplane")
      .setAudience(c.aud ?? hostId)
      .setSubject(c.sub)
      .setIssuedAt(c.iat ?? now)
      .setExpirationTime(c.exp ?? now + 60)
      .setJti(c.jti ?? randomUUID())
      .sign(c.key ?? privateKey);
  };

  /** Connects as the stock CLI does (TLS verified against the local CA), sends `line`, collects what comes back. */
  const connect = async (line: string) => {
    const [host, port] = agent.rendezvous!.split(":");
    const socket = tls.connect(Number(port), host!, { ca: readFileSync(local.caPath, "utf8") });
    await new Promise<void>((resolve, reject) => {
      socket.once("secureConnect", resolve);
      socket.once("error", reject);
    });
    const session = collect(socket);
    socket.write(`${line}\r\n`);
    return { socket, ...session };
  };

  const start = async (over: Partial<DesiredDyno>) => {
    const dyno = desiredDyno({ name: `run.${1000 + Math.floor(Math.random() * 9000)}`, type: "run", attach: "pipes", slug_id: slugId, ...over });
    const token = await sign({ sub: dyno.id, purpose: "command" });
    const res = await request(
      agent.port,
      "POST",
      "/commands",
      { authorization: `Bearer ${token}`, "content-type": "application/json" },
      JSON.stringify({ op: "start", dyno }),
    );
    expect(res.status).toBe(202);
    return dyno;
  };
  const sup = (): Supervisor => agent.supervisor;

  beforeAll(async () => {
    ({ privateKey } = await generateKeyPair("EdDSA", { extractable: true }));
    ({ privateKey: otherKey } = await generateKeyPair("EdDSA"));
    workDir = tempDir("dynoplane-agent-");
    local = await ensureLocalTls(path.join(workDir, "tls"), ["localhost", "127.0.0.1"]);
    const slug = buildSlug();
    slugDir = path.dirname(slug);
    slugId = randomUUID();
    const agentDir = path.join(workDir, "agent");
    mkdirSync(path.join(agentDir, "slugs"), { recursive: true, mode: 0o700 });
    copyFileSync(slug, slugCachePath(agentDir, slugId));
    const jwk = await exportJWK(privateKey);
    agent = await startAgent({
      workDir: agentDir,
      listenHost: "127.0.0.1",
      listenPort: 0,
      rendezvousPort: 0,
      rendezvousCertFile: local.certPath,
      rendezvousKeyFile: local.keyPath,
      commandKey: { kty: jwk.kty!, crv: jwk.crv, x: jwk.x },
      hostId,
      stopGraceMs: 2_000,
      log: () => {},
    });
  });

  afterAll(async () => {
    await agent?.stop();
    rmSync(workDir, { recursive: true, force: true });
    rmSync(slugDir, { recursive: true, force: true });
  });

  it("serves TLS the CLI verifies, at the address the heartbeat reports", () => {
    expect(agent.rendezvous).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it("hands a good token's connection to its dyno, which greets and runs; the same token never works twice", async () => {
    const dyno = await start({ command: "cat; echo bye" });
    const token = await sign({ sub: dyno.id });
    const first = await connect(token);
    await first.until(/^rendezvous\r\n$/);
    // Replayed while the first session runs: refused, and the session goes on.
    const replay = await connect(token);
    await replay.closed;
    expect(replay.received()).toMatch(/^! token already used/);
    first.socket.write("hello\n\u0004");
    await first.closed;
    expect(first.received()).toBe("rendezvous\r\nhello\nbye\n");
  });

  it("refuses wrong, expired, foreign, misdirected and mis-purposed tokens, and leaves the dyno waiting for the right one", async () => {
    const dyno = await start({ command: "echo attached at last" });
    const other = await start({ attach: undefined, command: "sleep 600" }); // a detached run on the same host
    const now = Math.floor(Date.now() / 1000);
    const refused = [
      "not-a-token",
      `${await sign({ sub: dyno.id })}x`, // tampered signature
      await sign({ sub: dyno.id, key: otherKey }), // not the control plane's key
      await sign({ sub: dyno.id, iat: now - 120, exp: now - 60 }), // expired
      await sign({ sub: dyno.id, aud: randomUUID() }), // another host's
      await sign({ sub: dyno.id, purpose: "route" }), // a token for something else
      await sign({ sub: other.id }), // another dyno's (one that takes no client)
      await sign({ sub: randomUUID() }), // a dyno this host does not run
    ];
    for (const token of refused) {
      const attempt = await connect(token);
      await attempt.closed;
      expect(attempt.received(), token).toMatch(/^! /);
      expect(attempt.received()).not.toContain("rendezvous");
    }
    expect(sup().inspect(dyno.id)?.state).toBe("starting");
    expect(sup().inspect(other.id)?.state).toBe("up");
    const right = await connect(await sign({ sub: dyno.id }));
    await right.closed;
    expect(right.received()).toBe("rendezvous\r\nattached at last\n");
    await sup().stop(other.id);
  }, 60_000);

  it("waits for a start command still on its way when its client is quicker", async () => {
    const dyno = desiredDyno({ name: "run.2468", type: "run", attach: "pipes", slug_id: slugId, command: "echo raced" });
    const client = await connect(await sign({ sub: dyno.id }));
    await new Promise((r) => setTimeout(r, 300));
    const token = await sign({ sub: dyno.id, purpose: "command" });
    await request(
      agent.port,
      "POST",
      "/commands",
      { authorization: `Bearer ${token}`, "content-type": "application/json" },
      JSON.stringify({ op: "start", dyno }),
    );
    await client.closed;
    expect(client.received()).toBe("rendezvous\r\nraced\n");
  });
});
