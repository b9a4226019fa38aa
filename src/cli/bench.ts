/** `dynoplane bench <name>` (`npm run bench:<name>`): one module per benchmark under src/bench/. */
const BENCHES: Record<string, () => Promise<{ run(args: string[]): Promise<number> }>> = {
  api: () => import("../bench/api.ts"),
  deploy: () => import("../bench/deploy.ts"),
  logs: () => import("../bench/logs.ts"),
  router: () => import("../bench/router.ts"),
  wake: () => import("../bench/wake.ts"),
};

export async function run(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  const load = name ? BENCHES[name] : undefined;
  if (!load) {
    console.error(`usage: dynoplane bench <${Object.keys(BENCHES).join("|")}>`);
    return 2;
  }
  return (await load()).run(rest);
}
