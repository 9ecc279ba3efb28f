import calculateSlot from 'cluster-key-slot';
import { randomUUID } from 'node:crypto';
import { sessionKey, useKeyLayout } from '../../src/shared/store/keys';
import { clusterNodes, ownerOf } from '../support/clusterAdmin';
import { waitFor } from '../support/harness';
import { useIsolatedStores } from '../support/isolatedStores';
import { startLocalCluster, type LocalCluster } from '../support/localCluster';
import { killAllProcesses, startProcess, type ServiceProcess } from '../support/processes';
import { redisServerAvailable } from '../support/redisServer';
import { SseClient } from '../support/sse';
import { request } from '../support/http';

/*
 * Live streams when a Redis Cluster master is SIGKILLed: a local cluster of this test's own (3
 * masters, one replica each; ports FAULT_STREAMS_CLUSTER_BASE_PORT.. +5, 7210 unless given, apart
 * from cluster.failover.test.ts's 7200-7205), an API process on it, streams of attempts on the
 * victim and on another master, and a quiz's. The victim's subscriptions are lost with its
 * connection: its streams end at once, the other master's stream goes on, and a client that
 * reconnects as EventSource would (after a 503 while the slots have no master, too) follows the
 * attempt again on the promoted replica.
 */

const BASE_PORT = Number(process.env.FAULT_STREAMS_CLUSTER_BASE_PORT ?? 7210);
const describeWithRedisServer = redisServerAvailable() ? describe : describe.skip;
useKeyLayout('bucketed');

const stores = useIsolatedStores();
let cluster: LocalCluster | undefined;
afterAll(async () => {
  await killAllProcesses();
  cluster?.stop();
}, 60_000);

describeWithRedisServer('Redis Cluster: a master SIGKILLed under open streams', () => {
  test('its streams end at once, the others go on, and their clients follow the promoted replica', async () => {
    cluster = startLocalCluster(BASE_PORT);
    const ports = Array.from({ length: 6 }, (_, i) => BASE_PORT + i);
    const api: ServiceProcess = await startProcess('api', {
      ...stores().env,
      REDIS_URL: '',
      QUEUE_PREFIX: '',
      REDIS_CLUSTER_NODES: cluster.nodes,
      STREAM_TIME_EVENT_SECONDS: 1,
    });
    const url = api.url!;
    const quiz = `quiz-${randomUUID().slice(0, 8)}`;
    const start = async () => {
      const res = await request(url, 'POST', '/api/sessions/start', {
        user_id: `u-${randomUUID()}`,
        quiz_id: quiz,
        time_limit_seconds: 600,
      });
      expect(res.status).toBe(201);
      return res.body as { id: string; version: number };
    };
    const nodeOf = async (id: string) => ownerOf(await clusterNodes(ports), calculateSlot(sessionKey(id)));
    const a = await start();
    const victim = await nodeOf(a.id);
    let b = await start();
    while ((await nodeOf(b.id)) === victim) b = await start();

    const open = async (path: string, headers: Record<string, string> = {}) => {
      const res = await SseClient.open(url + path, headers);
      if (!res.client) throw new Error(`${path}: ${res.status}`);
      return res.client;
    };
    const streamA = await open(`/api/sessions/${a.id}/stream`);
    const streamB = await open(`/api/sessions/${b.id}/stream`);
    const quizStream = await open(`/api/quizzes/${quiz}/stream`);
    const lastA = await streamA.nextAttempt();
    await streamB.nextAttempt();

    const killedAt = Date.now();
    await cluster.kill(victim);
    await streamA.waitEnded(5000);
    await quizStream.waitEnded(5000);
    const endedMs = Date.now() - killedAt;

    // the other master's attempt: followed throughout (a write may meet CLUSTERDOWN once the victim is marked failed)
    await waitFor('a write on the other master', async () => {
      const res = await request(url, 'PATCH', `/api/sessions/${b.id}/progress`, { question_id: 'q', answer: 'during' });
      return res.status === 200;
    });
    expect((await streamB.nextAttempt()).attempt).toMatchObject({ id: b.id, answers: { q: 'during' } });

    // A's client reconnects every RECONNECT_MS; a 503 while the victim's slots have no master is retried
    let resumed: SseClient | undefined;
    let refused = 0;
    await waitFor(
      "A's stream accepted again",
      async () => {
        const res = await SseClient.open(`${url}/api/sessions/${a.id}/stream`, { 'last-event-id': lastA.id! });
        if (res.client) resumed = res.client;
        else {
          expect(res.status).toBe(503);
          refused++;
        }
        return resumed !== undefined;
      },
      30_000,
      500,
    );
    const resumedMs = Date.now() - killedAt;
    await waitFor('a write on the promoted replica', async () => {
      const res = await request(url, 'PATCH', `/api/sessions/${a.id}/progress`, { question_id: 'q', answer: 'after' });
      return res.status === 200;
    });
    const e = await resumed!.nextAttempt();
    expect(e.attempt).toMatchObject({ id: a.id, answers: { q: 'after' } });
    // B's stream outlived the whole failover
    expect(streamB.ended).toBe(false);
    expect((await request(url, 'PATCH', `/api/sessions/${b.id}/progress`, { question_id: 'q', answer: 'after' })).status).toBe(200);
    expect((await streamB.nextAttempt()).attempt).toMatchObject({ id: b.id, answers: { q: 'after' } });
    console.log(
      `cluster-streams-kill: the victim's streams ended ${endedMs} ms after the kill; A's stream was accepted again ${resumedMs} ms after it (${refused} reconnects refused with 503 before)`,
    );
    for (const c of [streamB, resumed!]) c.close();
  }, 120_000);
});
