import os from "node:os";
import { defineConfig } from "vitest/config";

// Four projects, one run (`npm test`): pure unit tests first, on their own; then, side by
// side, the host agent on this machine (sandboxes, builds, dynos) with no control plane, the
// platform (the real Worker in workerd, a real PostgreSQL, the agent, the heroku CLI and
// git), and the attacks, each a hostile tenant's way in that must fail, against the same
// platform (one start serves both projects). `npx vitest --project unit` runs the first
// alone, `--project attacks` the last; `npm run test:fast` the unit, route and workerd tests.
//
// As many files run at once as the machine has processors, at least two (vitest's own default
// is one fewer, which is one at a time on two processors); DYNOPLANE_TEST_WORKERS overrides.
// More than that saturates a two-processor machine, and browser and fleet tests then time out.
const workers = Number(process.env.DYNOPLANE_TEST_WORKERS) || Math.max(2, os.availableParallelism());

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 240_000,
    pool: "forks",
    reporters: ["default"],
    projects: [
      // Pure tests, with nothing global to leak from one file to the next: one process per worker.
      { extends: true, test: { name: "unit", include: ["test/unit/**/*.test.ts"], sequence: { groupOrder: 0 }, maxWorkers: workers, isolate: false } },
      { extends: true, test: { name: "agent", include: ["test/agent/**/*.test.ts"], sequence: { groupOrder: 1 }, maxWorkers: workers } },
      {
        extends: true,
        test: {
          name: "platform",
          include: ["test/routes/**/*.test.ts", "test/workerd/**/*.test.ts", "test/e2e/**/*.test.ts"],
          globalSetup: ["./test/support/global-setup.ts"],
          sequence: { groupOrder: 1 },
          maxWorkers: workers,
          // A worker takes file after file without starting afresh (the platform is one
          // process tree outside it; the files share only their connections to it).
          isolate: false,
        },
      },
      {
        extends: true,
        test: {
          name: "attacks",
          include: ["test/attacks/**/*.test.ts"],
          globalSetup: ["./test/support/global-setup.ts"],
          sequence: { groupOrder: 1 },
          maxWorkers: workers,
          isolate: false,
        },
      },
    ],
  },
});
