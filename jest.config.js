/** Jest: TypeScript through ts-jest (transpile only; `npm run typecheck` checks types), real Redis and PostgreSQL. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // the fault tests run on their own: npm run test:faults (jest.faults.config.js)
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/test/faults/'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  globalSetup: '<rootDir>/test/support/globalSetup.ts',
  testTimeout: 30000,
  maxWorkers: 2,
};
