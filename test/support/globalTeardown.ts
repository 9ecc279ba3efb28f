import { runRedis } from './globalSetup';

/** After the last test file: stops the run's private Redis (see globalSetup). */
export default async function globalTeardown(): Promise<void> {
  await runRedis.quizTestRedis?.close();
  runRedis.quizTestRedis = undefined;
}
