import { expect, test } from "vitest";

test("BID-005 schedules a retry", () => {
  // Nothing awaits this promise: the rejection surfaces after the test has passed. vitest 3 fails
  // the run (exit 1) but its JUnit file does not mention the error (vitest 5 adds a suite for it).
  Promise.reject(new Error("retry queue closed"));
  expect(true).toBe(true);
});
