import path from "node:path";
import exitHook from "async-exit-hook";
import { exportLines } from "../local/cli-env.ts";
import { DEFAULT_PORT, startPlatform, writeEnvFile } from "../local/platform.ts";
import { integerFlag, parseFlags } from "./args.ts";
import { forgetLocalDatabase, rememberLocalDatabase } from "./local-database.ts";

/**
 * `dynoplane start [--port N] [--unsafe-no-sandbox]` (what `npm start` runs): the whole
 * platform on this machine until Ctrl-C. Data stays in `.dynoplane/` between runs.
 */
export async function run(args: string[]): Promise<number> {
  const { values: flags } = parseFlags(args, { port: { type: "string" }, verbose: { type: "boolean" }, "unsafe-no-sandbox": { type: "boolean" } });
  const home = path.resolve(process.env.DYNOPLANE_HOME ?? ".dynoplane");
  const port = integerFlag(flags.port ?? process.env.PORT, "port", DEFAULT_PORT, 0, 65535);
  console.log(`Starting dynoplane in ${home} ...`);
  const platform = await startPlatform({
    home,
    port,
    databaseUrl: process.env.DATABASE_URL,
    quiet: !flags.verbose,
    unsafeNoSandbox: flags["unsafe-no-sandbox"] === true,
  });
  await rememberLocalDatabase(home, platform.databaseUrl);
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
    void forgetLocalDatabase(home).then(done);
  });
  await new Promise(() => {});
  return 0;
}
