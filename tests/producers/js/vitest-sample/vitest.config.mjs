// The sample's own config, so the run never reads the repository's (there is none) or a parent's.
import { defineConfig } from "vitest/config";

export default defineConfig({
  // Inside the copy the test runs in, not in the shared node_modules (two xdist workers at once).
  cacheDir: ".vite-cache",
  test: {
    include: ["tests/**/*.test.ts"],
    // One file at a time: the output order is then the same on every run.
    fileParallelism: false,
  },
});
