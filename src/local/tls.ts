import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";

export interface LocalTls {
  /** The local certificate authority's certificate; clients are told to trust it. */
  caPath: string;
  /** The system trust store plus the local CA, for git (which trusts one file only). */
  bundlePath: string;
  certPath: string;
  keyPath: string;
}

const SYSTEM_BUNDLES = ["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"];

function openssl(args: string[]) {
  execFileSync("openssl", args, { stdio: ["ignore", "ignore", "pipe"] });
}

/**
 * A local CA (made once, kept in `dir`) and a server certificate it signs for `names`
 * (re-issued when the names change). `*.localhost` itself is never used: clients reject
 * it; `*.apps.localhost` and exact names work everywhere.
 */
export async function ensureLocalTls(dir: string, names: string[]): Promise<LocalTls> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const caPath = path.join(dir, "ca.pem");
  const caKey = path.join(dir, "ca.key");
  if (!existsSync(caPath) || !existsSync(caKey)) {
    openssl([
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      caKey,
      "-out",
      caPath,
      "-days",
      "3650",
      "-subj",
      "/CN=dynoplane local CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ]);
  }
  const certPath = path.join(dir, "server.pem");
  const keyPath = path.join(dir, "server.key");
  const namesPath = path.join(dir, "server.names");
  const wanted = [...new Set(names)].sort().join(",");
  const current = existsSync(namesPath) ? readFileSync(namesPath, "utf8") : "";
  if (current !== wanted || !existsSync(certPath)) {
    const san = [...new Set(names)].map((n) => (/^[\d.]+$/.test(n) || n.includes(":") ? `IP:${n}` : `DNS:${n}`)).join(",");
    const csr = path.join(dir, "server.csr");
    openssl([
      "req",
      "-new",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      keyPath,
      "-out",
      csr,
      "-subj",
      `/CN=${names[0]}`,
      "-addext",
      `subjectAltName=${san}`,
      "-addext",
      "extendedKeyUsage=serverAuth",
    ]);
    openssl(["x509", "-req", "-in", csr, "-CA", caPath, "-CAkey", caKey, "-CAcreateserial", "-days", "825", "-copy_extensions", "copy", "-out", certPath]);
    await fs.rm(csr, { force: true });
    await fs.writeFile(namesPath, wanted);
  }
  const bundlePath = path.join(dir, "ca-bundle.pem");
  const system = SYSTEM_BUNDLES.find((p) => existsSync(p));
  await fs.writeFile(bundlePath, (system ? readFileSync(system, "utf8") + "\n" : "") + readFileSync(caPath, "utf8"));
  return { caPath, bundlePath, certPath, keyPath };
}
