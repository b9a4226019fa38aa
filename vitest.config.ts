import { defineConfig } from "vitest/config";

// Three projects, one run (`npm test`): pure unit tests; the host agent on this machine
// (sandboxes, builds, dynos) with no control plane; and the platform (the real Worker in
// workerd under wrangler dev, a real PostgreSQL, the agent, the heroku CLI and git), which
// only its own project boots. `npx vitest --project unit` runs the first alone.
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
    ],
  },
});
