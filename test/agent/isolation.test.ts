import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { desiredDyno, get, supervisorFixture, tempDir, waitFor } from "./support.ts";

const fixture = supervisorFixture();
const { cleanups } = fixture;
const supervisor = async () => (await fixture.start()).sup;

const json = async (port: number, p: string) => JSON.parse((await get(port, p)).body) as Record<string, any>;

// Isolation between apps needs the agent to run as root (dynos then run as unprivileged uids).
describe.skipIf(process.getuid?.() !== 0)("dyno isolation", () => {
  it("runs each app's dynos as a uid of its own that cannot read another app's files or the platform's data", async () => {
    const sup = await supervisor();
    const a = desiredDyno();
    const b = desiredDyno();
    expect(a.app_id).not.toBe(b.app_id);
    sup.ensure(a);
    sup.ensure(b);
    const [ia, ib] = [
      await waitFor("a up", () => sup.inspect(a.id)?.state === "up" && sup.inspect(a.id)),
      await waitFor("b up", () => sup.inspect(b.id)?.state === "up" && sup.inspect(b.id)),
    ];
    const [whoA, whoB] = [await json(ia.port!, "/whoami"), await json(ib.port!, "/whoami")];
    expect(whoA.uid).not.toBe(0);
    expect(whoB.uid).not.toBe(whoA.uid);

    await get(ib.port!, "/write");
    const bFile = path.join(ib.dir!, "app", "scratch.txt");
    expect((await json(ib.port!, `/peek?path=${encodeURIComponent(bFile)}`)).read).toBe("left behind");
    expect(await json(ia.port!, `/peek?path=${encodeURIComponent(bFile)}`)).toEqual({ error: "EACCES" });
    expect(await json(ia.port!, `/peek?path=${encodeURIComponent(path.join(ib.dir!, "app", "server.js"))}`)).toEqual({ error: "EACCES" });

    // A platform home is laid out like `npm start`'s: passable by others, its secrets private.
    const home = tempDir("dynoplane-home-");
    cleanups.push(() => rmSync(home, { recursive: true, force: true }));
    writeFileSync(path.join(home, "signing-key.jwk"), "secret", { mode: 0o600 });
    mkdirSync(path.join(home, "worker"), { mode: 0o700 });
    writeFileSync(path.join(home, "worker", "blob"), "slug bytes", { mode: 0o644 });
    expect(await json(ia.port!, `/peek?path=${encodeURIComponent(path.join(home, "signing-key.jwk"))}`)).toEqual({ error: "EACCES" });
    expect(await json(ia.port!, `/peek?path=${encodeURIComponent(path.join(home, "worker", "blob"))}`)).toEqual({ error: "EACCES" });
  });
});
