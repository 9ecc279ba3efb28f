import fc from 'fast-check';
import { clientText, maskClientText } from './support/clientText';
import { expectErrorContract } from './support/contract';
import { assertProperty, replayParameters } from './support/property';
import { type TestResponse } from './support/http';

/* The test suite's own tools: the leak check, the property runner's replay. */

function errorResponse(message: string, sent?: TestResponse['sent']): TestResponse {
  const headers = new Headers({ 'x-request-id': 'r-1', 'content-type': 'application/json' });
  const body = { error: 'Bad Request', errorCode: 'VALIDATION_ERROR', message, statusCode: 400, requestId: 'r-1', retryable: false };
  return { status: 400, headers, body, sent };
}

describe('the leak check', () => {
  const sqlKey = "' UNION SELECT usename, passwd FROM pg_shadow --";

  test('a message echoing the client’s own SQL-looking key passes', () => {
    const sent = clientText('/api/sessions/x/progress', {}, JSON.stringify({ answers: { [sqlKey]: 'a\u0000b' } }));
    expect(() => expectErrorContract(errorResponse(`answers.${sqlKey}: answer must not contain NUL characters`, sent), 400)).not.toThrow();
  });

  test('SQL, stack frames and Redis replies the client never sent still fail it', () => {
    const sent = clientText('/api/sessions/x/progress', {}, JSON.stringify({ answers: { q1: 'a' } }));
    for (const leak of [
      'select id from quiz_sessions where id = $1',
      'boom\n    at Object.<anonymous> (/src/x.ts:3:9)',
      'ReplyError: WRONGTYPE',
    ]) {
      expect(() => expectErrorContract(errorResponse(leak, sent), 400)).toThrow();
    }
  });

  test('a short run the client sent does not hide the service’s own words', () => {
    // the client sent "se" and "om": neither masks "select … from"
    const sent = clientText('/p', {}, JSON.stringify({ a: 'se', b: 'om' }));
    expect(maskClientText('select x from y', sent)).toBe('select x from y');
    expect(() => expectErrorContract(errorResponse('select x from y', sent), 400)).toThrow();
  });

  test('without what the client sent, nothing is masked', () => {
    expect(() => expectErrorContract(errorResponse(`answers.${sqlKey}: bad`), 400)).toThrow();
  });

  test('masking replaces exactly the echoed runs', () => {
    const sent = clientText('/api/sessions/abc%20def', { 'x-request-id': 'req' }, undefined);
    expect(maskClientText('Route GET /api/sessions/abc def not found', sent)).toBe('Route GET «sent» not found');
  });
});

describe('property replay', () => {
  const saved = { seed: process.env.FC_SEED, path: process.env.FC_PATH };
  afterEach(() => {
    for (const [name, value] of [
      ['FC_SEED', saved.seed],
      ['FC_PATH', saved.path],
    ] as const) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  test('FC_SEED and FC_PATH override a property’s parameters; unset, the parameters stand', () => {
    delete process.env.FC_SEED;
    delete process.env.FC_PATH;
    expect(replayParameters({ numRuns: 7 })).toEqual({ numRuns: 7 });
    process.env.FC_SEED = '-1739097910';
    process.env.FC_PATH = '85:0:3';
    expect(replayParameters({ numRuns: 7, seed: 1 })).toEqual({ numRuns: 7, seed: -1739097910, path: '85:0:3' });
  });

  test('a non-integer FC_SEED is refused rather than ignored', () => {
    process.env.FC_SEED = 'abc';
    expect(() => replayParameters()).toThrow(/FC_SEED must be an integer/);
  });

  test('a failure prints its seed, path and the command that replays it, and that seed finds it again', () => {
    delete process.env.FC_SEED;
    delete process.env.FC_PATH;
    const property = fc.property(fc.integer({ min: 0, max: 1000 }), (n) => n < 500);
    let message = '';
    try {
      assertProperty(property);
    } catch (err) {
      message = String((err as Error).message);
    }
    const replay = /Replay: FC_SEED=(-?\d+) FC_PATH=(\S+) npm test -- test\/testSupport\.test\.ts -t /.exec(message);
    expect(replay).not.toBeNull();
    const [, seed, path] = replay as RegExpExecArray;
    // the printed seed and path reach the same (shrunk) counterexample at once
    const again = fc.check(property, { seed: Number(seed), path });
    expect(again.failed).toBe(true);
    expect(again.numRuns).toBe(1);
    expect(again.counterexample).toEqual([500]);
  });
});
