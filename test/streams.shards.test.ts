import calculateSlot from 'cluster-key-slot';
import { randomUUID } from 'node:crypto';
import { pubSubOf, quizChannel } from '../src/shared/store/channels';
import { DIRTY_BUCKETS, sessionKey } from '../src/shared/store/keys';
import { channelsOn, clusterNodes, failOverTo, isServingMaster, moveSlot, onNode, ownerOf } from './support/clusterAdmin';
import { buildSession, startTestApi, waitFor, type AttemptJson, type TestApi } from './support/harness';
import { SseClient } from './support/sse';
import { request } from './support/http';

/*
 * Where the streams' subscriptions sit and what happens when one is lost, on whatever Redis the run
 * has: one node in the single layout (plain PUBLISH/SUBSCRIBE), one node in the bucketed layout
 * (sharded pub/sub on one node), or the local cluster (`npm run test:cluster`: sharded pub/sub, each
 * channel on the master serving its slot). "A node" below is that one node, or a master.
 * On the cluster only: a failover and a slot moved to another master, each ending the streams
 * whose subscriptions were on what moved, and no other.
 */

const seeds = process.env.REDIS_CLUSTER_NODES?.split(',').map((hostPort) => Number(hostPort.split(':')[1]));
const onCluster = seeds !== undefined;
const clusterOnly = onCluster ? test : test.skip;

let api: TestApi;
/** The one node's port (REDIS_URL), when not on a cluster. */
let singlePort: number;
beforeAll(async () => {
  api = await startTestApi({ STREAM_TIME_EVENT_SECONDS: 1 });
  singlePort = onCluster ? 0 : Number(new URL(api.config.REDIS_URL).port || 6379);
});
afterAll(async () => api.close());

const opened: SseClient[] = [];
afterEach(() => {
  for (const c of opened.splice(0)) c.close();
});

async function connect(path: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const res = await SseClient.open(api.url + path, headers);
  if (!res.client) throw new Error(`stream ${path}: ${res.status} ${JSON.stringify(res.body)}`);
  opened.push(res.client);
  return res.client;
}

const patch = (id: string, answer: string) => request(api.url, 'PATCH', `/api/sessions/${id}/progress`, { question_id: 'q', answer });

/** The port of the node serving `slot` now. */
const nodeOfSlot = async (slot: number): Promise<number> => (onCluster ? ownerOf(await clusterNodes(seeds!), slot) : singlePort);
/** The node serving an attempt's keys (and its channels). */
const nodeOfAttempt = (id: string): Promise<number> => nodeOfSlot(calculateSlot(sessionKey(id)));
/** Every node: the masters, or the one node. */
const everyNode = async (): Promise<number[]> =>
  onCluster ? (await clusterNodes(seeds!)).filter(isServingMaster).map((n) => n.port) : [singlePort];

/** Starts attempts of `quiz` until `want` holds for their nodes (at most 60 tries); returns them with their nodes. */
async function attemptsWhere(
  quiz: string,
  want: (placed: Array<{ attempt: AttemptJson; node: number }>) => boolean,
): Promise<Array<{ attempt: AttemptJson; node: number }>> {
  const placed: Array<{ attempt: AttemptJson; node: number }> = [];
  for (let i = 0; i < 60 && !want(placed); i++) {
    const attempt = await buildSession(api, { quiz_id: quiz, time_limit_seconds: 600 });
    placed.push({ attempt, node: await nodeOfAttempt(attempt.id) });
  }
  if (!want(placed)) throw new Error(`no such attempts after ${placed.length} tries`);
  return placed;
}

/** An attempt of `quiz` on a node `where` accepts (started until one is). */
async function attemptOn(quiz: string, where: (node: number) => boolean = () => true): Promise<{ attempt: AttemptJson; node: number }> {
  return (await attemptsWhere(quiz, (p) => p.length > 0 && where(p.at(-1)!.node))).at(-1)!;
}

/** The ids of this harness's subscriber connections on node `port` (CLIENT LIST, by connection name). */
async function subscriberConnections(port: number): Promise<string[]> {
  const list = await onNode(port, async (r) => (await r.call('CLIENT', 'LIST', 'TYPE', 'pubsub')) as string);
  return list
    .split('\n')
    .filter((line) => line.includes(` name=${api.streamsName} `))
    .map((line) => /^id=(\d+)/.exec(line)![1]);
}

/** Expects `stream` to stay open and deliver the next change of `attempt`. */
async function expectStillFollowing(stream: SseClient, attempt: AttemptJson, answer: string): Promise<void> {
  expect((await patch(attempt.id, answer)).status).toBe(200);
  const e = await stream.nextAttempt();
  expect(e.attempt).toMatchObject({ id: attempt.id, answers: { q: answer } });
  expect(stream.ended).toBe(false);
}

/** Reconnects to an attempt's stream with Last-Event-ID and expects the next write to arrive on it. */
async function expectResumes(attempt: AttemptJson, lastEventId: string): Promise<void> {
  const again = await connect(`/api/sessions/${attempt.id}/stream`, { 'last-event-id': lastEventId });
  expect((await again.next()).event).toBe('time');
  expect((await patch(attempt.id, 'after')).status).toBe(200);
  expect((await again.nextAttempt()).attempt).toMatchObject({ id: attempt.id, answers: { q: 'after' } });
}

test('the subscriptions sit where the layout publishes: plain channels on one node, or sharded channels on the node serving each slot', async () => {
  const quiz = `quiz-${randomUUID().slice(0, 8)}`;
  const s = await buildSession(api, { quiz_id: quiz, time_limit_seconds: 600 });
  const attemptStream = await connect(`/api/sessions/${s.id}/stream`);
  await connect(`/api/quizzes/${quiz}/stream`);
  await attemptStream.nextAttempt();

  const attemptNode = await nodeOfAttempt(s.id);
  const found = new Map<number, { attempt: { plain: string[]; sharded: string[] }; quiz: { plain: string[]; sharded: string[] } }>();
  for (const node of await everyNode())
    found.set(node, { attempt: await channelsOn(node, `session:*${s.id}:changes`), quiz: await channelsOn(node, `quiz:*${quiz}:changes`) });

  if (pubSubOf().name === 'plain') {
    expect(found.get(attemptNode)!.attempt).toEqual({ plain: [`session:${s.id}:changes`], sharded: [] });
    expect(found.get(attemptNode)!.quiz).toEqual({ plain: [quizChannel(quiz)], sharded: [] });
  } else {
    const quizChannels: string[] = [];
    for (const [node, { attempt, quiz: ofQuiz }] of found) {
      // nothing of the streams on plain pub/sub, broadcast to every node of a cluster
      expect(attempt.plain).toEqual([]);
      expect(ofQuiz.plain).toEqual([]);
      expect(attempt.sharded).toEqual(node === attemptNode ? [`${sessionKey(s.id)}:changes`] : []);
      // each of the quiz's bucket channels on the node serving its slot
      for (const channel of ofQuiz.sharded) expect(await nodeOfSlot(calculateSlot(channel))).toBe(node);
      quizChannels.push(...ofQuiz.sharded);
      // on a cluster, the buckets spread over every master
      expect(ofQuiz.sharded.length).toBeGreaterThan(0);
    }
    expect(new Set(quizChannels).size).toBe(DIRTY_BUCKETS);
    expect(quizChannels.every((c) => /^quiz:\{\d+\}:/.test(c) && c.endsWith(`:${quiz}:changes`))).toBe(true);
  }

  // the streams gone, the process unsubscribes
  for (const c of opened) c.close();
  await waitFor('the channels unsubscribed', async () => {
    for (const node of await everyNode()) {
      const left = [await channelsOn(node, `session:*${s.id}:changes`), await channelsOn(node, `quiz:*${quiz}:changes`)];
      if (left.some((l) => l.plain.length + l.sharded.length > 0)) return false;
    }
    return api.streams.feeds === 0;
  });
});

test("a quiz's stream gets the changes of its attempts on every node", async () => {
  const quiz = `quiz-${randomUUID().slice(0, 8)}`;
  const stream = await connect(`/api/quizzes/${quiz}/stream`);
  const nodes = await everyNode();
  const placed = await attemptsWhere(quiz, (p) => nodes.every((n) => p.some((x) => x.node === n)));
  for (const { attempt } of placed) expect((await patch(attempt.id, `on ${attempt.id}`)).status).toBe(200);
  const written = new Set(placed.map((p) => p.attempt.id));
  while (written.size > 0) {
    const { attempt } = await stream.nextAttempt();
    const id = attempt.id as string;
    if ((attempt.answers as Record<string, string>).q === `on ${id}`) written.delete(id);
  }
  expect(new Set(placed.map((p) => p.node))).toEqual(new Set(nodes));
});

test('a subscriber connection that drops ends the streams whose subscriptions it carried, and no other; they resume', async () => {
  const nodes = await everyNode();
  // A and its quiz; B of another quiz, on another node when there is one
  const a = await attemptOn(`quiz-${randomUUID().slice(0, 8)}`);
  const b = await attemptOn(`quiz-${randomUUID().slice(0, 8)}`, (node) => nodes.length === 1 || node !== a.node);
  const streamA = await connect(`/api/sessions/${a.attempt.id}/stream`);
  const streamB = await connect(`/api/sessions/${b.attempt.id}/stream`);
  const quizStream = await connect(`/api/quizzes/${a.attempt.quiz_id}/stream`);
  const lastA = await streamA.nextAttempt();
  await streamB.nextAttempt();

  const killed = await subscriberConnections(a.node);
  expect(killed).toHaveLength(1);
  await onNode(a.node, (r) => r.call('CLIENT', 'KILL', 'ID', killed[0]));
  await streamA.waitEnded();
  // a quiz has channels on every node
  await quizStream.waitEnded();
  if (b.node === a.node) await streamB.waitEnded();
  else await expectStillFollowing(streamB, b.attempt, 'unaffected');
  await expectResumes(a.attempt, lastA.id!);
});

clusterOnly(
  'a failover ends the streams on the master that handed over, and only those; they resume on the new master',
  async () => {
    const nodes = await clusterNodes(seeds!);
    const a = await attemptOn(`quiz-${randomUUID().slice(0, 8)}`);
    const b = await attemptOn(`quiz-${randomUUID().slice(0, 8)}`, (node) => node !== a.node);
    const oldMaster = nodes.find((n) => n.port === a.node)!;
    const replica = nodes.find((n) => n.masterId === oldMaster.id && !n.flags.includes('fail'))!;
    const streamA = await connect(`/api/sessions/${a.attempt.id}/stream`);
    const streamB = await connect(`/api/sessions/${b.attempt.id}/stream`);
    const quizStream = await connect(`/api/quizzes/${a.attempt.quiz_id}/stream`);
    const lastA = await streamA.nextAttempt();
    await streamB.nextAttempt();

    await failOverTo(seeds!, replica.port);
    try {
      // the old master drops its shard channels' subscribers as it becomes a replica
      await streamA.waitEnded(10_000);
      await quizStream.waitEnded(10_000);
      await expectStillFollowing(streamB, b.attempt, 'unaffected');
      await expectResumes(a.attempt, lastA.id!);
      expect((await channelsOn(replica.port, `session:*${a.attempt.id}:changes`)).sharded).toHaveLength(1);
    } finally {
      await failOverTo(seeds!, oldMaster.port);
    }
  },
  60_000,
);

clusterOnly(
  'a slot moved to another master ends the streams of that slot only, not the others of its old master',
  async () => {
    // A and C on one master (different slots), B on another
    const placed = await attemptsWhere(`quiz-${randomUUID().slice(0, 8)}`, (p) => {
      const first = p[0];
      return (
        first !== undefined &&
        p.some((x) => x.node === first.node && calculateSlot(sessionKey(x.attempt.id)) !== calculateSlot(sessionKey(first.attempt.id))) &&
        p.some((x) => x.node !== first.node)
      );
    });
    const a = placed[0];
    const slot = calculateSlot(sessionKey(a.attempt.id));
    const c = placed.find((x) => x.node === a.node && calculateSlot(sessionKey(x.attempt.id)) !== slot)!;
    const b = placed.find((x) => x.node !== a.node)!;
    const [streamA, streamB, streamC] = [
      await connect(`/api/sessions/${a.attempt.id}/stream`),
      await connect(`/api/sessions/${b.attempt.id}/stream`),
      await connect(`/api/sessions/${c.attempt.id}/stream`),
    ];
    const quizStream = await connect(`/api/quizzes/${a.attempt.quiz_id}/stream`);
    const lastA = await streamA.nextAttempt();
    await streamB.nextAttempt();
    await streamC.nextAttempt();

    await moveSlot(seeds!, slot, a.node, b.node);
    try {
      await streamA.waitEnded(10_000);
      // the quiz's channel of A's bucket is in A's slot
      await quizStream.waitEnded(10_000);
      await expectStillFollowing(streamC, c.attempt, 'same master, another slot');
      await expectStillFollowing(streamB, b.attempt, 'another master');
      await expectResumes(a.attempt, lastA.id!);
      expect((await channelsOn(b.node, `session:*${a.attempt.id}:changes`)).sharded).toHaveLength(1);
    } finally {
      await moveSlot(seeds!, slot, b.node, a.node);
    }
  },
  60_000,
);
