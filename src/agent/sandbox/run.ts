import { spawn } from "node:child_process";

/** The environment of every privileged helper the agent runs: fixed, nothing of a tenant's. */
export const ROOT_ENV = { PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C.UTF-8" };

/** Runs a system command as the agent, with ROOT_ENV; resolves to stdout, rejects with stderr. */
export function run(cmd: string, args: string[], o: { stdin?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: ROOT_ENV, stdio: [o.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    let err = "";
    child.stdout!.on("data", (b: Buffer) => out.push(b));
    child.stderr!.on("data", (b: Buffer) => (err = (err + b.toString()).slice(-4000)));
    if (o.stdin !== undefined) child.stdin!.end(o.stdin);
    child.on("error", reject);
    child.on("close", (code) =>
      code === 0 ? resolve(Buffer.concat(out).toString("utf8")) : reject(new Error(`${cmd} ${args.slice(0, 3).join(" ")} failed (${code}): ${err.trim()}`)),
    );
  });
}
