/**
 * Jest for the browser tests (`npm run test:e2e`): test/e2e only, one file at a time, Debian's
 * Chromium driven by playwright-core against the service run as real processes.
 */
const base = require('./jest.config');

module.exports = {
  ...base,
  roots: ['<rootDir>/test/e2e'],
  testPathIgnorePatterns: ['/node_modules/'],
  testTimeout: 60000,
  maxWorkers: 1,
};
