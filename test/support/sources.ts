import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fetch } from "undici";
import { expect } from "vitest";
import { api, tlsAgent } from "./api.ts";
import type { TestAccount } from "./factories.ts";

/** A gzipped tarball of `files` (path → contents), as `git archive | gzip` or a CI job would make. */
export function tarball(files: Record<string, string>): Buffer {
  const dir = mkdtempSync(path.join(os.tmpdir(), "dynoplane-source-"));
  try {
    for (const [name, body] of Object.entries(files)) writeFileSync(path.join(dir, name), body);
    return execFileSync("tar", ["-czf", "-", "-C", dir, ...Object.keys(files)]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** PUTs bytes to a signed URL the way curl or the builds plugin does. */
export async function putBlob(url: string, body: Uint8Array) {
  const res = await fetch(url, { method: "PUT", body, headers: { "Content-Type": "application/gzip" }, dispatcher: tlsAgent() });
  return { status: res.status, text: await res.text() };
}

/** Creates a source with POST /sources and uploads `body` to it; returns its URLs. */
export async function uploadSource(account: TestAccount, body: Uint8Array): Promise<{ get_url: string; put_url: string }> {
  const created = await api("/sources", { method: "POST", token: account.token });
  expect(created.status, created.text).toBe(201);
  const put = await putBlob(created.body.source_blob.put_url, body);
  expect(put.status, put.text).toBe(200);
  return created.body.source_blob;
}
