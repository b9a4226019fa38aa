import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { portAccepts } from "../agent/process-group.ts";
import { freePort } from "../node/ports.ts";

/**
 * How nginx is set up: `dokku` as Dokku's app template writes it (an upstream without
 * kept-alive connections, `Connection` passed through for WebSockets, an access log), or
 * `tuned` (kept-alive upstream connections, no access log).
 */
export type NginxStyle = "dokku" | "tuned";

/** nginx in front of an app: HTTPS to the client, HTTP/1.1 to the upstream. */
export interface Nginx {
  port: number;
  pid(): number | undefined;
  stop(): Promise<void>;
}

const CANDIDATES = ["/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"];

/**
 * The nginx binary, installed (Debian's nginx-light) when it is missing and this process may
 * install packages; otherwise a sentence saying why there is none.
 */
export function findOrInstallNginx(): { binary: string } | { missing: string } {
  const found = CANDIDATES.find((p) => existsSync(p));
  if (found) return { binary: found };
  if (process.getuid?.() !== 0) return { missing: "nginx is not installed, and installing it (apt-get install nginx-light) needs root" };
  try {
    execFileSync("apt-get", ["install", "-y", "-qq", "nginx-light"], { stdio: "pipe", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  } catch (err) {
    return {
      missing: `nginx is not installed, and apt-get install nginx-light failed: ${String((err as { stderr?: Buffer }).stderr ?? err)
        .trim()
        .split("\n")
        .pop()}`,
    };
  }
  const installed = CANDIDATES.find((p) => existsSync(p));
  return installed ? { binary: installed } : { missing: "nginx-light was installed but no nginx binary was found" };
}

/**
 * Runs nginx in `dir` as an HTTPS reverse proxy to `upstream` (host:port), one worker per
 * CPU, set up in `style`.
 */
export async function startNginx(opts: {
  binary: string;
  dir: string;
  upstream: string;
  certPath: string;
  keyPath: string;
  style: NginxStyle;
}): Promise<Nginx> {
  const dokku = opts.style === "dokku";
  const port = await freePort();
  await fs.mkdir(path.join(opts.dir, "logs"), { recursive: true });
  const conf = path.join(opts.dir, "nginx.conf");
  await fs.writeFile(
    conf,
    `worker_processes auto;
pid ${path.join(opts.dir, "nginx.pid")};
error_log ${path.join(opts.dir, "logs", "error.log")} warn;
events { worker_connections 4096; }
http {
  ${dokku ? `access_log ${path.join(opts.dir, "logs", "access.log")};` : "access_log off;"}
  client_body_temp_path ${path.join(opts.dir, "body")};
  proxy_temp_path ${path.join(opts.dir, "proxy")};
  fastcgi_temp_path ${path.join(opts.dir, "fastcgi")};
  uwsgi_temp_path ${path.join(opts.dir, "uwsgi")};
  scgi_temp_path ${path.join(opts.dir, "scgi")};
  upstream app { server ${opts.upstream};${dokku ? "" : " keepalive 64;"} }
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${opts.certPath};
    ssl_certificate_key ${opts.keyPath};
    keepalive_requests 100000;
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      ${dokku ? "proxy_set_header Upgrade $http_upgrade;\n      proxy_set_header Connection $http_connection;" : 'proxy_set_header Connection "";'}
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
    }
  }
}
`,
  );
  const child: ChildProcess = spawn(opts.binary, ["-p", opts.dir, "-c", conf, "-g", "daemon off;"], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 10_000;
  while (!(await portAccepts(port, 200))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`nginx did not start: ${stderr.trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    port,
    pid: () => child.pid,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill("SIGQUIT");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
