import { defineConfig } from "vitest/config";

// Four projects, one run (`npm test`): pure unit tests; the host agent on this machine
// (sandboxes, builds, dynos) with no control plane; the platform (the real Worker in
// workerd, a real PostgreSQL, the agent, the heroku CLI and git); and the attacks, each a
// hostile tenant's way in that must fail, against the same platform (one start serves both
// projects). `npx vitest --project unit` runs the first alone, `--project attacks` the last.
export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 240_000,
    pool: "forks",
    reporters: ["default"],
    projects: [
      { extends: true, test: { name: "unit", include: ["test/unit/**/*.test.ts"] } },
      { extends: true, test: { name: "agent", include: ["test/agent/**/*.test.ts"] } },
      {
        extends: true,
        test: {
          name: "platform",
          include: ["test/routes/**/*.test.ts", "test/workerd/**/*.test.ts", "test/e2e/**/*.test.ts"],
          globalSetup: ["./test/support/global-setup.ts"],
        },
      },
      {
        extends: true,
        test: { name: "attacks", include: ["test/attacks/**/*.test.ts"], globalSetup: ["./test/support/global-setup.ts"] },
      },
    ],
  },
});
