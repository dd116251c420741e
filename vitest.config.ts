import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["apps/*/test/**/*.test.ts", "packages/*/test/**/*.test.ts", "test/**/*.test.ts"],
    // Process and integration tests spawn real programs and servers; give them room on 2 cores.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    // One temporary directory for the run (TMPDIR), removed at its end: test/global-setup.ts.
    // (absolute: the config is also found from an app's directory, `cd apps/x && npx vitest run`)
    globalSetup: [fileURLToPath(new URL("test/global-setup.ts", import.meta.url))],
    maxWorkers: 2,
  },
});
