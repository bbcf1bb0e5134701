import { defineConfig } from "vitest/config";

// Spawned processes inherit NODE_V8_COVERAGE from this setup file when COVERAGE=1 (npm test).
const setupFiles = ["test/helpers/child-coverage.ts"];

// One list of suites; root package.json scripts pick them with --project.
export default defineConfig({
  test: {
    // Spawned regions and racks run the compiled bin: build it from the sources under test first.
    globalSetup: ["test/helpers/build.ts"],
    // `npm test` sets COVERAGE=1 and gives each suite its --coverage.reportsDirectory; the in-process
    // coverage lands there as coverage-final.json, and scripts/coverage.mjs merges it with the
    // spawned processes' (coverage/children) and prints the summary.
    coverage: {
      enabled: process.env.COVERAGE === "1",
      provider: "v8",
      include: ["libs/*/src/**/*.ts", "apps/server/src/**/*.ts", "apps/web/src/**/*.ts"],
      exclude: ["**/*.test.ts", "**/*.d.ts"],
      reporter: ["json"],
    },
    projects: [
      {
        test: {
          name: "unit",
          include: ["libs/*/src/**/*.test.ts", "apps/server/src/**/*.test.ts", "apps/web/src/**/*.test.ts"],
          setupFiles,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          setupFiles,
        },
      },
      {
        test: {
          name: "browser",
          include: ["test/e2e/**/*.test.ts"],
          testTimeout: 120_000,
          hookTimeout: 60_000,
          fileParallelism: false,
          setupFiles,
        },
      },
      {
        test: {
          name: "services",
          include: ["test/services/**/*.test.ts"],
          testTimeout: 60_000,
          hookTimeout: 60_000,
          fileParallelism: false,
          setupFiles,
        },
      },
    ],
  },
});
