describe("Checkout", () => {
  test("total", () => {
    expect(1 + 2).toBe(4);
  });

  test.each([
    ["EUR", 10],
    ["USD", 11],
  ])("total in %s", (currency, total) => {
    expect(total).toBe(10);
  });
});

describe("Refund", () => {
  test("total", () => {
    expect({ refunded: 3 }).toEqual({ refunded: 2 });
  });
});

describe("BID-001 bidding", () => {
  describe("TENANT-001 org isolation", () => {
    beforeAll(() => {
      throw new Error("database seed failed: connection refused");
    });

    test("notifies only its org", () => {
      expect(true).toBe(true);
    });

    test("pages only its on-call", () => {
      expect(true).toBe(true);
    });
  });
});
