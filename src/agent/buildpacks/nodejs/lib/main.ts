import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import fs from "node:fs/promises";
import path from "node:path";
import { CompileError, detail, main, run, topic } from "../../lib/output.ts";
import { checkEngine, defaultWeb, readPackageJson } from "./package-json.ts";

/**
 * The Node.js buildpack. `compile BUILD_DIR CACHE_DIR ENV_DIR` checks `engines` against
 * the host's node and npm (there is no other version to download), installs the
 * dependencies with npm (`npm ci` with a lockfile), runs the build script, and prunes
 * devDependencies; npm's cache lives in the app's build cache, so rebuilds need no network.
 * `release BUILD_DIR` prints the release YAML, with `web: npm start` when the app can start.
 */

const [command, buildDir = "", cacheDir = ""] = [process.argv[2], ...process.argv.slice(3).map((p) => path.resolve(p))];

/** The profile every dyno sources: the app's own binaries first, production mode by default. */
const PROFILE_SCRIPT = `# The app's node_modules binaries, wherever the slug was unpacked ($HOME is the app directory).
export PATH="$HOME/node_modules/.bin:$PATH"
export NODE_ENV="\${NODE_ENV:-production}"
`;

function npmEnv(): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    LANG: process.env.LANG ?? "C.UTF-8",
    HOME: process.env.HOME,
    TMPDIR: process.env.TMPDIR,
    npm_config_cache: path.join(cacheDir, "npm"),
    npm_config_update_notifier: "false",
    npm_config_fund: "false",
    npm_config_audit: "false",
    // devDependencies are needed by build scripts; they are pruned afterwards.
    npm_config_include: "dev",
  };
}

function version(cmd: string): string {
  try {
    return execFileSync(cmd, ["--version"], { env: npmEnv(), encoding: "utf8" }).trim().replace(/^v/, "");
  } catch {
    throw new CompileError(`${cmd} is not installed on this host`);
  }
}

async function npm(args: string[], what: string): Promise<void> {
  const result = await run("npm", args, { cwd: buildDir, env: npmEnv() });
  if (result.status !== 0) throw new CompileError(`${what} failed (npm exit status ${result.status})`);
}

async function compile(): Promise<void> {
  if (!buildDir || !cacheDir) throw new CompileError("usage: compile BUILD_DIR CACHE_DIR ENV_DIR");
  const pkg = readPackageJson(buildDir);
  topic("Creating runtime environment");
  detail("NODE_ENV=production (unless the app sets it)");

  topic("Checking binaries");
  const [nodeVersion, npmVersion] = [version("node"), version("npm")];
  detail(`engines.node (package.json):  ${pkg.engines.node ?? "unspecified"}`);
  detail(`engines.npm (package.json):   ${pkg.engines.npm ?? "unspecified"}`);
  checkEngine("node", pkg.engines.node, nodeVersion);
  checkEngine("npm", pkg.engines.npm, npmVersion);
  detail(`Using node ${nodeVersion} and npm ${npmVersion} from this host`);

  topic("Installing dependencies");
  await fs.mkdir(path.join(cacheDir, "npm"), { recursive: true });
  const locked = existsSync(path.join(buildDir, "package-lock.json")) || existsSync(path.join(buildDir, "npm-shrinkwrap.json"));
  if (locked) {
    detail("Installing node modules (package.json + package-lock)");
    await npm(["ci", "--prefer-offline", "--no-audit", "--no-fund"], "npm ci");
  } else {
    detail("Installing node modules (package.json)");
    await npm(["install", "--prefer-offline", "--no-audit", "--no-fund"], "npm install");
  }

  const build = pkg.scripts["heroku-postbuild"] !== undefined ? "heroku-postbuild" : pkg.scripts.build !== undefined ? "build" : null;
  if (build) {
    topic("Build");
    detail(`Running ${build}`);
    await npm(["run", build], `npm run ${build}`);
  }
  if (pkg.hasDevDependencies) {
    topic("Pruning devDependencies");
    await npm(["prune", "--omit=dev", "--no-audit", "--no-fund"], "npm prune");
  }

  await fs.mkdir(path.join(buildDir, ".profile.d"), { recursive: true });
  await fs.writeFile(path.join(buildDir, ".profile.d", "nodejs.sh"), PROFILE_SCRIPT, { mode: 0o644 });
}

/** Prints the release YAML; a broken package.json already failed the build in compile. */
function release(): void {
  let web: string | null = null;
  try {
    web = defaultWeb(buildDir, readPackageJson(buildDir));
  } catch {
    // no default web process then
  }
  process.stdout.write(web ? `---\ndefault_process_types:\n  web: ${web}\n` : "---\ndefault_process_types: {}\n");
}

if (command === "release") release();
else main(compile);
