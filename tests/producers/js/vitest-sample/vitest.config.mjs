// The sample's own config, so the run never reads the repository's (there is none) or a parent's.
import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    // One file at a time: the output order is then the same on every run.
    fileParallelism: false,
  },
});
