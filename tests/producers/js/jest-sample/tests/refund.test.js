// Same describe and test names as checkout.test.js: only the file tells them apart.
describe("Refund", () => {
  test("total", () => {
    expect(5).toBe(6);
  });
});

test("receipt layout", () => {
  expect({ total: 12, currency: "EUR" }).toMatchInlineSnapshot(`
{
  "currency": "EUR",
  "total": 10,
}
`);
});
