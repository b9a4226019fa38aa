import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";

const exec = promisify(execFile);

/** The unprivileged account dynos run as when the agent runs as root. */
export interface DynoUser {
  name: string;
  uid: number;
  gid: number;
}

async function lookup(name: string): Promise<DynoUser | null> {
  try {
    const [uid, gid] = await Promise.all([exec("id", ["-u", name]), exec("id", ["-g", name])]);
    return { name, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    return null;
  }
}

/**
 * The user dynos run as: as root, `name` (created as a system user with its own group and
 * no login when missing), because app code must never run with the agent's privileges; as
 * anyone else, null (dynos run as the agent's own user, which has nothing to drop).
 */
export async function ensureDynoUser(name = "dyno"): Promise<DynoUser | null> {
  if (process.getuid?.() !== 0) return null;
  const existing = await lookup(name);
  if (existing) return existing;
  await exec("useradd", ["--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name]).catch(
    async (err) => {
      // Another agent on the same machine may have created it a moment ago.
      if (!(await lookup(name))) throw new Error(`could not create the ${name} user: ${(err as Error).message}`);
    },
  );
  const created = await lookup(name);
  if (!created) throw new Error(`the ${name} user does not exist after useradd`);
  if (created.uid === 0) throw new Error(`the ${name} user has uid 0; dynos must not run as root`);
  return created;
}

/**
 * Fails early when the dyno user could not reach `dir` (a parent like /root is 0700), so
 * the operator reads one clear message instead of every dyno crashing with EACCES.
 */
export async function assertReachable(dir: string, user: DynoUser | null): Promise<void> {
  if (!user) return;
  for (let p = path.resolve(dir); ; p = path.dirname(p)) {
    const st = await fs.stat(p);
    const bit = st.uid === user.uid ? 0o100 : st.gid === user.gid ? 0o010 : 0o001;
    if ((st.mode & bit) === 0)
      throw new Error(`${p} is not searchable by the ${user.name} user, so dynos under ${dir} could not start; choose a work dir outside it`);
    if (p === path.dirname(p)) return;
  }
}

/** Per-app uids start here, far above the ranges distributions hand out to people and services. */
const APP_UID_BASE = 1_000_000_000;
const APP_UID_SPAN = 1_000_000_000;

/**
 * The account one app's dynos run as: a uid and a group of its own, derived from the app
 * id (no passwd entry is needed to run as a number), so that one app's dynos cannot read
 * another app's files, which are private to their uid. Null stays null (not root).
 */
export function appUser(base: DynoUser | null, appId: string): DynoUser | null {
  if (!base) return null;
  let h = 2166136261;
  for (const ch of appId) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  const id = APP_UID_BASE + (h % APP_UID_SPAN);
  return { name: `${base.name}-${appId.slice(0, 8)}`, uid: id, gid: id };
}
