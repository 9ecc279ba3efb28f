/**
 * Jest for the fault tests (`npm run test:faults`): test/faults only, one file at a time (each runs
 * the service as real processes under load and breaks Redis, PostgreSQL or the processes).
 */
const base = require('./jest.config');

module.exports = {
  ...base,
  roots: ['<rootDir>/test/faults'],
  testPathIgnorePatterns: ['/node_modules/'],
  testTimeout: 180000,
  maxWorkers: 1,
};
