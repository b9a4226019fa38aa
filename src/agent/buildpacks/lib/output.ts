import { spawn } from "node:child_process";
import { createInterface } from "node:readline";

/**
 * Build output in Heroku's shape, for the built-in buildpacks: `-----> ` starts a step,
 * seven spaces indent its detail, ` !     ` marks a warning or the error that failed the
 * build (the agent reports the last such line as the build's error).
 */

/** Starts a step: `-----> Installing requirements with pip`. */
export function topic(text: string): void {
  process.stdout.write(`-----> ${text}\n`);
}

/** A detail line under the current step. */
export function detail(text: string): void {
  process.stdout.write(`       ${text}\n`);
}

/** A warning (or, last before a failure, the reason for it). */
export function warn(text: string): void {
  process.stdout.write(` !     ${text}\n`);
}

/** Thrown to end a compile with a message the user sees as the build's error. */
export class CompileError extends Error {}

/**
 * Runs a buildpack's main function: a CompileError becomes a ` !` line and exit status 1;
 * anything else is a bug, reported with its stack. stdout is drained before exiting.
 */
export function main(fn: () => Promise<void>): void {
  fn().then(
    () => {
      process.exitCode = 0;
    },
    (err: unknown) => {
      if (err instanceof CompileError) warn(err.message);
      else warn(`internal error: ${(err as Error)?.stack ?? String(err)}`);
      process.exitCode = 1;
    },
  );
}

/** What `run` gives back: the exit status and the lines it printed (both streams). */
export interface RunResult {
  status: number;
  lines: string[];
}

/**
 * Runs a program with its output shown indented as detail lines, and returns its exit
 * status and lines (for explaining a failure).
 */
export function run(
  cmd: string,
  args: string[],
  opts: {
    cwd?: string;
    env?: NodeJS.ProcessEnv;
    quiet?: boolean /** Rewrites each line before it is shown or kept (to scrub secrets). */;
    transform?: (line: string) => string;
  } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ["ignore", "pipe", "pipe"] });
    const lines: string[] = [];
    let open = 2;
    let status = 0;
    const done = () => {
      if (--open === -1) resolve({ status, lines });
    };
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream, crlfDelay: Infinity })
        .on("line", (raw) => {
          const line = opts.transform ? opts.transform(raw) : raw;
          lines.push(line);
          if (!opts.quiet && line.trim() !== "") detail(line);
        })
        .on("close", done);
    }
    child.on("error", (err) => {
      lines.push(`could not run ${cmd}: ${err.message}`);
      status = 127;
    });
    child.on("close", (code, signal) => {
      status = status || (code ?? (signal ? 128 : 1));
      done();
    });
  });
}
