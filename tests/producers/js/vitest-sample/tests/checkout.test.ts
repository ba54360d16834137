import { afterAll, beforeAll, describe, expect, test } from "vitest";

// A hook that fails blocks every test of its suite: vitest reports them skipped and adds one
// failed testcase named after the suite.
describe("BID-001 checkout", () => {
  describe("TENANT-001 org isolation", () => {
    beforeAll(() => {
      throw new Error("database seed failed: connection refused");
    });

    test("total is the sum of lines", () => {
      expect(1 + 1).toBe(2);
    });

    test("discount applies once", () => {
      expect(2 * 2).toBe(4);
    });
  });

  test("BID-007 empty cart", () => {
    expect([]).toHaveLength(0);
  });
});

describe("refund", () => {
  afterAll(() => {
    throw new Error("cleanup failed: tmp dir busy");
  });

  test("BID-003 refund restores stock", () => {
    expect(true).toBe(true);
  });
});

describe("TENANT-002 totals", () => {
  test("BID-004 rounding", () => {
    expect(0.1 + 0.2).toBe(0.3);
  });

  test("BID-008 receipt layout", () => {
    expect({ total: 12, currency: "EUR" }).toMatchInlineSnapshot(`
      {
        "currency": "EUR",
        "total": 10,
      }
    `);
  });
});
