// The sample's own config: jest-junit with its defaults (no file attribute), written where the
// test asks (JEST_JUNIT_OUTPUT_FILE).
module.exports = {
  testMatch: ["**/tests/**/*.test.js"],
  reporters: ["default", "jest-junit"],
};
