import path from 'node:path';
import fc from 'fast-check';

/*
 * Every fast-check property runs through assertProperty, so any run can be replayed:
 *   FC_SEED=<seed> npm test -- <file>                      every property of the file with that seed
 *   FC_SEED=<seed> FC_PATH=<path> npm test -- <file> -t '<test name>'   one counterexample, at once
 * Without FC_SEED each property draws a fresh seed (so CI keeps finding new counterexamples), and a
 * failure prints the seed, the path and the command that replays it.
 */

/** The run parameters with FC_SEED / FC_PATH from the environment laid over them. */
export function replayParameters<T>(params: fc.Parameters<T> = {}): fc.Parameters<T> {
  const seed = process.env.FC_SEED;
  const replayPath = process.env.FC_PATH;
  if (seed !== undefined && seed !== '' && !Number.isInteger(Number(seed)))
    throw new Error(`FC_SEED must be an integer, got ${JSON.stringify(seed)}`);
  return {
    ...params,
    ...(seed ? { seed: Number(seed) } : {}),
    ...(replayPath ? { path: replayPath } : {}),
  };
}

/** The command that replays a failed run: the seed, the path, the file and the test's name. */
function replayCommand(details: fc.RunDetails<unknown>): string {
  const state = expect.getState();
  const file = state.testPath ? path.relative(process.cwd(), state.testPath) : '<file>';
  const name = state.currentTestName ? ` -t ${JSON.stringify(state.currentTestName.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))}` : '';
  return `FC_SEED=${details.seed} FC_PATH=${details.counterexamplePath ?? ''} npm test -- ${file}${name}`;
}

function failure(details: fc.RunDetails<unknown>): Error {
  const error = new Error(`${fc.defaultReportMessage(details)}\n\nReplay: ${replayCommand(details)}`);
  if (details.errorInstance instanceof Error) error.cause = details.errorInstance;
  return error;
}

/** fc.assert for a synchronous property, replayable from FC_SEED / FC_PATH. */
export function assertProperty<T>(property: fc.IProperty<T>, params?: fc.Parameters<T>): void {
  const details = fc.check(property, replayParameters(params));
  if (details.failed) throw failure(details as fc.RunDetails<unknown>);
}

/**
 * How long an asynchronous property may run before fast-check stops it and fails with its seed:
 * under jest's default testTimeout (30 s, jest.config.js), so a property that runs too long fails
 * replayably instead of being cut off by jest with no seed printed. A test with a longer jest
 * timeout passes a longer `interruptAfterTimeLimit`.
 */
export const PROPERTY_TIME_LIMIT_MS = 27_000;

/** fc.assert for an asynchronous property, replayable from FC_SEED / FC_PATH; stopped (a failure, with its seed) after PROPERTY_TIME_LIMIT_MS unless given another limit. */
export async function assertAsyncProperty<T>(property: fc.IAsyncProperty<T>, params?: fc.Parameters<T>): Promise<void> {
  const details = await fc.check(
    property,
    replayParameters({ interruptAfterTimeLimit: PROPERTY_TIME_LIMIT_MS, markInterruptAsFailure: true, ...params }),
  );
  if (details.failed) throw failure(details as fc.RunDetails<unknown>);
}
