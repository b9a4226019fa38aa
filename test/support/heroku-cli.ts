import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ensureHerokuCli } from "../../src/local/heroku-cli.ts";
import { platform } from "./api.ts";

export { ensureHerokuCli, HEROKU_CLI_VERSION } from "../../src/local/heroku-cli.ts";

/**
 * A throwaway HOME for one CLI user: its ~/.netrc, ~/.gitconfig and the CLI's cache stay
 * inside it. It lies in the test platform's directory, removed with it at the run's end.
 */
export function makeCliHome(): string {
  return mkdtempSync(path.join(platform().home, "cli-home-"));
}

export interface CliOptions {
  /** HOME for the CLI; one per test account (see makeCliHome). */
  home: string;
  /** Extra variables, applied last (e.g. HEROKU_API_KEY). */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Written to stdin, which is then closed. */
  input?: string;
  timeoutMs?: number;
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment the CLI runs with: the platform's variables, quiet and offline, no inherited Heroku credentials. */
export function cliEnv(home: string, extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string | undefined> = { ...process.env };
  for (const key of Object.keys(env)) if (key.startsWith("HEROKU_")) delete env[key];
  // vitest sets NODE_ENV=test, which makes oclif look for TypeScript sources and warn.
  delete env.NODE_ENV;
  // The CLI warns about these on every command; it trusts the platform's CA through NODE_EXTRA_CA_CERTS.
  delete env.SSL_CERT_FILE;
  delete env.SSL_CERT_DIR;
  Object.assign(env, {
    HOME: home,
    XDG_CACHE_HOME: path.join(home, ".cache"),
    XDG_CONFIG_HOME: path.join(home, ".config"),
    XDG_DATA_HOME: path.join(home, ".local", "share"),
    HEROKU_SKIP_ANALYTICS: "1",
    HEROKU_SKIP_NEW_VERSION_CHECK: "true",
    HEROKU_DISABLE_AUTOUPDATE: "1",
    DISABLE_TELEMETRY: "true",
    NO_COLOR: "1",
    FORCE_COLOR: "0",
    OCLIF_COLUMNS: "200", // oclif wraps at 80 columns when not on a terminal
    ...platform().cliEnv,
    // Each test account's CLI keeps its own cache in its HOME, as on separate machines.
    HEROKU_CACHE_DIR: undefined,
    ...extra,
  });
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  return env as Record<string, string>;
}

/** Runs the real heroku CLI with node and collects its output. */
export async function heroku(args: string[], opts: CliOptions): Promise<CliResult> {
  const bin = await ensureHerokuCli();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: opts.cwd ?? opts.home,
      env: cliEnv(opts.home, opts.env),
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d) => (stderr += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.on("error", () => {});
    child.stdin.end(opts.input ?? "");
  });
}

/** Removes ANSI escape sequences and carriage returns from terminal output. */
export function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]|\r/g, "");
}

export interface PtySession {
  /** Everything printed so far, escape sequences removed. */
  output(): string;
  /** Resolves when the output printed after the previous expect matches `pattern`. */
  expect(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Types text as a user would (include "\r" for Enter). */
  write(text: string): void;
  /** Resolves with the exit code and the whole output. */
  exited(timeoutMs?: number): Promise<{ code: number; output: string }>;
  kill(): void;
}

/** Runs the heroku CLI on a pseudo-terminal, for commands that prompt. */
export async function herokuPty(args: string[], opts: Omit<CliOptions, "input">): Promise<PtySession> {
  const bin = await ensureHerokuCli();
  const { spawn: ptySpawn } = await import("@lydell/node-pty");
  const term = ptySpawn(process.execPath, [bin, ...args], {
    name: "xterm",
    cols: 200,
    rows: 50,
    cwd: opts.cwd ?? opts.home,
    env: cliEnv(opts.home, opts.env),
  });
  let raw = "";
  let consumed = 0;
  const waiters = new Set<() => void>();
  term.onData((d) => {
    raw += d;
    for (const w of waiters) w();
  });
  const exit = new Promise<number>((resolve) =>
    term.onExit(({ exitCode }) => {
      for (const w of waiters) w();
      resolve(exitCode);
    }),
  );
  let done = false;
  void exit.then(() => (done = true));
  const output = () => stripAnsi(raw);

  return {
    output,
    expect(pattern, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const text = output().slice(consumed);
          const m = text.match(pattern);
          if (m) {
            consumed += (m.index ?? 0) + m[0].length;
            cleanup();
            resolve(m);
          } else if (done) {
            cleanup();
            reject(new Error(`the CLI exited before printing ${pattern}; output:\n${output()}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${pattern}; output:\n${output()}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    write: (text) => term.write(text),
    async exited(timeoutMs = 30_000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`the CLI did not exit; output:\n${output()}`)), timeoutMs);
      });
      try {
        const code = await Promise.race([exit, timeout]);
        return { code, output: output() };
      } finally {
        clearTimeout(timer);
      }
    },
    kill: () => {
      if (!done) term.kill();
    },
  };
}

/** The netrc entries the CLI wrote: machine → {login, password}. */
export function readNetrc(home: string): Record<string, { login?: string; password?: string }> {
  const file = path.join(home, ".netrc");
  if (!existsSync(file)) return {};
  const tokens = readFileSync(file, "utf8").split(/\s+/).filter(Boolean);
  const machines: Record<string, { login?: string; password?: string }> = {};
  let current: { login?: string; password?: string } | undefined;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i];
    if (t === "machine") machines[tokens[++i] ?? ""] = current = {};
    else if (t === "default") current = undefined;
    else if ((t === "login" || t === "password") && current) current[t] = tokens[++i];
  }
  return machines;
}

/**
 * The environment for `git push heroku`: the CLI's variables, the `heroku` binary on PATH
 * and a git identity. Git answers the platform's Basic challenge from ~/.netrc, where
 * `heroku login` leaves the git host's credentials (libcurl reads it, and git then asks no
 * credential helper); with `credentialHelper`, there is no such entry and git asks the CLI's
 * helper (`heroku git:credentials`, configured by the CLI, run through the shell), as it
 * does for a user who gave the CLI only HEROKU_API_KEY.
 */
export async function gitPushEnv(
  home: string,
  user: { token: string; email: string },
  opts: { credentialHelper?: boolean } = {},
): Promise<Record<string, string>> {
  const binDir = path.join(path.dirname(path.dirname(path.dirname(await ensureHerokuCli()))), ".bin");
  if (!opts.credentialHelper) {
    const gitHost = platform().cliEnv.HEROKU_GIT_HOST!.replace(/:\d+$/, "");
    writeFileSync(path.join(home, ".netrc"), `machine ${gitHost}\n  login ${user.email}\n  password ${user.token}\n`, { mode: 0o600 });
  }
  return {
    ...cliEnv(home, { HEROKU_API_KEY: user.token }),
    PATH: `${binDir}:${process.env.PATH}`,
    GIT_AUTHOR_NAME: "Test",
    GIT_AUTHOR_EMAIL: user.email,
    GIT_COMMITTER_NAME: "Test",
    GIT_COMMITTER_EMAIL: user.email,
  };
}
