import { ConfigError, loadConfig } from '../src/shared/config';
import { locate, locateQueues } from '../src/shared/redis';

/* Where Redis is: exactly one of REDIS_URL and REDIS_SENTINELS; the queues' own Redis; WAIT. */

describe('Redis location settings', () => {
  test('unset: one node at the default REDIS_URL', () => {
    const config = loadConfig({});
    expect(locate(config)).toMatchObject({ host: '127.0.0.1', port: 6379, db: 0 });
    expect(config.REDIS_WAIT_REPLICAS).toBe(0);
  });

  test('REDIS_SENTINELS with REDIS_SENTINEL_NAME: the Sentinels, the master by name, the passwords', () => {
    const config = loadConfig({
      REDIS_SENTINELS: 'sentinel-a:26379, 10.0.0.7:26380',
      REDIS_SENTINEL_NAME: 'quiz',
      REDIS_PASSWORD: 'master-secret',
      REDIS_SENTINEL_PASSWORD: 'sentinel-secret',
    });
    expect(locate(config)).toMatchObject({
      sentinels: [
        { host: 'sentinel-a', port: 26379 },
        { host: '10.0.0.7', port: 26380 },
      ],
      name: 'quiz',
      role: 'master',
      password: 'master-secret',
      sentinelPassword: 'sentinel-secret',
    });
    // a connection left on a demoted master reconnects
    expect(locate(config).reconnectOnError?.(new Error('READONLY You can’t write against a read only replica.'))).toBe(true);
    expect(locate(config).reconnectOnError?.(new Error('ERR something else'))).toBe(false);
  });

  test('setting two locations is an error that names both', () => {
    expect(() => loadConfig({ REDIS_URL: 'redis://a:6379', REDIS_SENTINELS: 'b:26379', REDIS_SENTINEL_NAME: 'm' })).toThrow(ConfigError);
    expect(() => loadConfig({ REDIS_URL: 'redis://a:6379', REDIS_SENTINELS: 'b:26379', REDIS_SENTINEL_NAME: 'm' })).toThrow(
      /REDIS_URL and REDIS_SENTINELS: set one of them, not both/,
    );
  });

  test('REDIS_SENTINELS needs REDIS_SENTINEL_NAME, and well-formed host:port pairs', () => {
    expect(() => loadConfig({ REDIS_SENTINELS: 'b:26379' })).toThrow(/REDIS_SENTINEL_NAME: required with REDIS_SENTINELS/);
    for (const bad of ['b', 'b:port', ':26379', 'a:1,b', ' , ']) {
      expect(() => loadConfig({ REDIS_SENTINELS: bad, REDIS_SENTINEL_NAME: 'm' })).toThrow(/REDIS_SENTINELS/);
    }
  });

  test('QUEUE_REDIS_URL moves the queues only; unset, they share the live state’s Redis', () => {
    const apart = loadConfig({ REDIS_URL: 'redis://state:6379/2', QUEUE_REDIS_URL: 'redis://jobs:6380/1' });
    expect(locate(apart)).toMatchObject({ host: 'state', port: 6379, db: 2 });
    expect(locateQueues(apart)).toMatchObject({ host: 'jobs', port: 6380, db: 1 });
    const together = loadConfig({ REDIS_SENTINELS: 's:26379', REDIS_SENTINEL_NAME: 'm' });
    expect(locateQueues(together)).toMatchObject({ sentinels: [{ host: 's', port: 26379 }], name: 'm' });
  });

  test('REDIS_WAIT_REPLICAS: its timeout must leave room within the command timeout', () => {
    expect(loadConfig({ REDIS_WAIT_REPLICAS: '1' })).toMatchObject({ REDIS_WAIT_REPLICAS: 1, REDIS_WAIT_TIMEOUT_MS: 500 });
    expect(() => loadConfig({ REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT_MS: '1000' })).toThrow(/REDIS_WAIT_TIMEOUT_MS: must be below/);
    expect(() => loadConfig({ REDIS_WAIT_REPLICAS: '17' })).toThrow(/REDIS_WAIT_REPLICAS/);
  });
});
