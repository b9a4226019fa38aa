import path from "node:path";
import exitHook from "async-exit-hook";
import { exportLines } from "../local/cli-env.ts";
import { DEFAULT_PORT, startPlatform, workerVarsFromEnv, writeEnvFile } from "../local/platform.ts";
import { integerFlag, parseFlags } from "./args.ts";
import { pythonFlags } from "./host.ts";

/**
 * `dynoplane start [--port N] [--python-packages index|host] [--python-index URL]
 * [--python-runtimes URL] [--python-strict-versions] [--unsafe-no-sandbox]` (what `npm start`
 * runs): the whole platform on this machine until Ctrl-C. Data stays in `.dynoplane/`
 * between runs. The Python settings (also DYNOPLANE_PYTHON_PACKAGES, _INDEX, _RUNTIMES and
 * _STRICT_VERSIONS=1) are the host agent's. The
 * Worker's variables of wrangler.toml (`ECO_IDLE_MINUTES=5 npm start`) can be set in the
 * environment, and `DYNOPLANE_CRON` replaces its cron schedules (`;` between several).
 */
export async function run(args: string[]): Promise<number> {
  const { values: flags } = parseFlags(args, {
    port: { type: "string" },
    verbose: { type: "boolean" },
    "python-packages": { type: "string" },
    "python-index": { type: "string" },
    "python-runtimes": { type: "string" },
    "python-strict-versions": { type: "boolean" },
    "unsafe-no-sandbox": { type: "boolean" },
  });
  const home = path.resolve(process.env.DYNOPLANE_HOME ?? ".dynoplane");
  const port = integerFlag(flags.port ?? process.env.PORT, "port", DEFAULT_PORT, 0, 65535);
  console.log(`Starting dynoplane in ${home} ...`);
  const platform = await startPlatform({
    home,
    port,
    databaseUrl: process.env.DATABASE_URL,
    quiet: !flags.verbose,
    unsafeNoSandbox: flags["unsafe-no-sandbox"] === true,
    python: pythonFlags({
      packages: flags["python-packages"] ?? process.env.DYNOPLANE_PYTHON_PACKAGES,
      index: flags["python-index"] ?? process.env.DYNOPLANE_PYTHON_INDEX,
      runtimes: flags["python-runtimes"] ?? process.env.DYNOPLANE_PYTHON_RUNTIMES,
      strictVersions: flags["python-strict-versions"] === true || process.env.DYNOPLANE_PYTHON_STRICT_VERSIONS === "1",
    }),
    workerVars: workerVarsFromEnv(),
    cron: process.env.DYNOPLANE_CRON?.split(";")
      .map((c) => c.trim())
      .filter(Boolean),
  });
  const envFile = await writeEnvFile(home, platform);

  const lines = ["", `dynoplane is running at ${platform.apiUrl}`, `Apps answer at https://<app>.apps.localhost:${platform.port}/`, ""];
  if (platform.firstAccount) {
    lines.push(
      "Created the first account:",
      `  email:    ${platform.firstAccount.email}`,
      `  password: ${platform.firstAccount.password}`,
      `  API key:  ${platform.firstAccount.apiKey}`,
      "",
    );
  }
  lines.push(
    "Point the heroku CLI and git at it:",
    "",
    exportLines(platform.cliEnv),
    "",
    `or: source ${path.relative(process.cwd(), envFile) || envFile}   (also sets HEROKU_API_KEY for the first account)`,
    "",
    "Press Ctrl-C to stop.",
  );
  console.log(lines.join("\n"));

  // Ctrl-C: the platform's own exit hook stops the Worker, the pooler and Postgres.
  exitHook((done) => {
    console.log("\nStopping dynoplane ...");
    done();
  });
  await new Promise(() => {});
  return 0;
}
