/** Jest: TypeScript through ts-jest (transpile only; `npm run typecheck` checks types), real Redis and PostgreSQL. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  globalSetup: '<rootDir>/test/support/globalSetup.ts',
  testTimeout: 30000,
  maxWorkers: 2,
};
