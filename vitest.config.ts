import { defineConfig } from "vitest/config";

// Three tiers, one run: pure unit tests; route tests against the real Worker in workerd
// (wrangler dev) with a real PostgreSQL; end-to-end tests with the real heroku CLI and git.
export default defineConfig({
  test: {
    globalSetup: ["./test/support/global-setup.ts"],
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 240_000,
    pool: "forks",
    reporters: ["default"],
  },
});
