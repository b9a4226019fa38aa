import type { PipfileSource } from "../../lib/pipfile.ts";
import { CompileError } from "../../lib/output.ts";

/**
 * Which package indexes pip uses, in Heroku's and pipenv's order: the Pipfile's
 * `[[source]]` entries, else the app's PIP_INDEX_URL / PIP_EXTRA_INDEX_URL config vars,
 * else the host's default (`dynoplane host --python-index`). A source naming the public
 * index is the host's default: on a host with a mirror of it, the mirror is asked.
 */

/** The public Python package index: the host's default unless its operator names another. */
export const PUBLIC_INDEX = "https://pypi.org/simple";

/** Addresses of the public index as Pipfiles write them (pipenv's template, older spellings). */
const PUBLIC_INDEX_RE = /^https?:\/\/(pypi\.org|pypi\.python\.org)\/simple\/?$/i;

/** The indexes of one install, as pip's environment gives them. */
export interface IndexPlan {
  primary: string;
  extra: string[];
  /** Hosts pip may reach without a verified TLS certificate (`verify_ssl = false`, an operator's http index). */
  trusted: string[];
  /** Where the choice came from, for the build output. */
  from: string;
}

/** `https://user:****@host/simple`: what may be shown of an index URL, as pip shows it. */
export function redactUrl(url: string): string {
  return url.replace(/^([a-z][a-z0-9+.-]*:\/\/)([^/@\s]*)@/i, (_m, scheme: string, auth: string) => {
    const user = auth.split(":")[0]!;
    return auth.includes(":") ? `${scheme}${user}:****@` : `${scheme}****@`;
  });
}

/** The secrets inside index URLs (passwords, tokens given as the user), raw and decoded, for scrubbing output. */
export function urlSecrets(urls: string[]): string[] {
  const out = new Set<string>();
  for (const url of urls) {
    const m = /^[a-z][a-z0-9+.-]*:\/\/([^/@\s]*)@/i.exec(url);
    if (!m) continue;
    const [user = "", pass] = m[1]!.split(/:(.*)/s);
    for (const secret of pass === undefined ? [user] : [pass]) {
      if (secret.length < 3) continue;
      out.add(secret);
      try {
        out.add(decodeURIComponent(secret));
      } catch {
        // Not percent-encoded: the raw form is enough.
      }
    }
  }
  return [...out].sort((a, b) => b.length - a.length);
}

/** Replaces every secret in a line with `****`. */
export function scrub(line: string, secrets: string[]): string {
  let out = line;
  for (const s of secrets) out = out.split(s).join("****");
  return out;
}

/** `${VAR}` and `$VAR` in a source URL, from the app's config vars, as they are (as pipenv expands them: `${CREDS}` may be `user:token`). */
export function expandVars(url: string, vars: Record<string, string>, where: string): string {
  return url.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a: string | undefined, b: string | undefined) => {
    const name = (a ?? b)!;
    const value = vars[name];
    if (value === undefined) throw new CompileError(`${where} uses \${${name}}, which is not set: add it with heroku config:set ${name}=...`);
    return value;
  });
}

function hostOf(url: string): string | null {
  try {
    const u = new URL(url);
    return u.port ? `${u.hostname}:${u.port}` : u.hostname;
  } catch {
    return null;
  }
}

function checkedUrl(url: string, where: string): string {
  if (!/^https?:\/\/\S+$/.test(url)) throw new CompileError(`${where} must be an http or https URL`);
  try {
    new URL(url);
  } catch {
    throw new CompileError(`${where} is not a URL: ${redactUrl(url)}`);
  }
  return url;
}

/** The index plan for a build; `hostIndex` is the operator's default. */
export function chooseIndexes(o: { sources: PipfileSource[]; sourcesFrom: string; config: Record<string, string>; hostIndex: string }): IndexPlan {
  const hostTrusted = o.hostIndex.startsWith("http://") ? [hostOf(o.hostIndex)!] : [];
  if (o.sources.length) {
    const urls = o.sources.map((s) => {
      const url = expandVars(s.url, o.config, `${o.sourcesFrom} [[source]] ${s.name}`);
      return PUBLIC_INDEX_RE.test(url) ? o.hostIndex : checkedUrl(url, `${o.sourcesFrom} [[source]] ${s.name} url`);
    });
    const trusted = new Set(hostTrusted.filter(() => urls.includes(o.hostIndex)));
    o.sources.forEach((s, i) => {
      if (!s.verifySsl && urls[i] !== o.hostIndex) trusted.add(hostOf(urls[i]!)!);
    });
    const unique = [...new Set(urls)];
    return { primary: unique[0]!, extra: unique.slice(1), trusted: [...trusted], from: `${o.sourcesFrom} [[source]]` };
  }
  const configured = o.config.PIP_INDEX_URL?.trim();
  const extraConfigured = (o.config.PIP_EXTRA_INDEX_URL ?? "").split(/\s+/).filter(Boolean);
  const trustedConfigured = (o.config.PIP_TRUSTED_HOST ?? "").split(/\s+/).filter(Boolean);
  if (configured || extraConfigured.length) {
    const primary = configured ? checkedUrl(configured, "PIP_INDEX_URL") : o.hostIndex;
    const extra = extraConfigured.map((u) => checkedUrl(u, "PIP_EXTRA_INDEX_URL"));
    return {
      primary,
      extra,
      trusted: [...new Set([...(configured ? [] : hostTrusted), ...trustedConfigured])],
      from: configured ? "the PIP_INDEX_URL config var" : "this host's default, with PIP_EXTRA_INDEX_URL",
    };
  }
  return { primary: o.hostIndex, extra: [], trusted: [...new Set([...hostTrusted, ...trustedConfigured])], from: "this host's default" };
}

/** pip's environment for a plan (URLs in the environment stay out of `ps` and of pip's own echo of its command). */
export function indexEnv(plan: IndexPlan): Record<string, string> {
  return {
    PIP_INDEX_URL: plan.primary,
    ...(plan.extra.length ? { PIP_EXTRA_INDEX_URL: plan.extra.join(" ") } : {}),
    ...(plan.trusted.length ? { PIP_TRUSTED_HOST: plan.trusted.join(" ") } : {}),
  };
}

/**
 * Whether an index answers at all: any HTTP answer counts (even 401 or 404, which pip will
 * explain better); a refused connection, an unknown name or no answer in time does not.
 * Credentials go in a header (fetch refuses them inside a URL). Redirects are not followed.
 */
export async function reachable(url: string, timeoutMs = 5_000): Promise<{ ok: true } | { ok: false; reason: string }> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return { ok: false, reason: "not a URL" };
  }
  const headers: Record<string, string> = { Accept: "text/html" };
  if (target.username || target.password) {
    headers.Authorization = `Basic ${Buffer.from(`${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`).toString("base64")}`;
    target.username = "";
    target.password = "";
  }
  try {
    const res = await fetch(target, { headers, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel().catch(() => {});
    return { ok: true };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    const reason = e.name === "TimeoutError" ? `no answer in ${timeoutMs / 1000} s` : (e.cause?.code ?? e.cause?.message ?? e.message);
    return { ok: false, reason };
  }
}
