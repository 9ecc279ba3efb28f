import { BUCKET_TAGS, bucketOf, keyLayout, sessionKey, type KeyLayoutName } from './keys';

/*
 * The pub/sub channels of attempt changes: every change a write script applies is published from
 * inside that script (no round trip of its own), on the attempt's channel and on its quiz's. The
 * message is the attempt as render() gives it (includes/render.lua), as JSON text: a subscriber
 * decodes it with decodeRendered, no read of its own.
 *
 * How they are published follows the key layout (one decision, pubSubOf):
 *   single    plain pub/sub (PUBLISH/SUBSCRIBE), as the seeds had it: session:<id>:changes and
 *             one channel per quiz, quiz:<quiz_id>:changes.
 *   bucketed  sharded pub/sub (SPUBLISH/SSUBSCRIBE): a channel lives on the shard of its slot
 *             instead of being broadcast to every node of a cluster. A script may only publish
 *             within its own slot, so the quiz has one channel per bucket,
 *             quiz:{<bucket>}:<quiz_id>:changes, and a quiz's stream subscribes to all of them.
 *             On one node too (Redis 7 has sharded pub/sub there), so the cluster's code path is
 *             the one `REDIS_KEY_LAYOUT=bucketed npm test` runs.
 */

/** How changes are published and subscribed to. */
export interface PubSubMode {
  name: 'plain' | 'sharded';
  /** The command the scripts publish with. */
  publish: 'PUBLISH' | 'SPUBLISH';
  /** The subscriber's commands and the event ioredis emits a message with. */
  subscribe: 'subscribe' | 'ssubscribe';
  unsubscribe: 'unsubscribe' | 'sunsubscribe';
  message: 'message' | 'smessage';
  /** The PUBSUB subcommand that lists a node's subscribed channels. */
  listing: 'CHANNELS' | 'SHARDCHANNELS';
  /** The PUBSUB subcommand that counts a channel's subscribers. */
  count: 'NUMSUB' | 'SHARDNUMSUB';
}

const PLAIN: PubSubMode = {
  name: 'plain',
  publish: 'PUBLISH',
  count: 'NUMSUB',
  subscribe: 'subscribe',
  unsubscribe: 'unsubscribe',
  message: 'message',
  listing: 'CHANNELS',
};

const SHARDED: PubSubMode = {
  name: 'sharded',
  publish: 'SPUBLISH',
  count: 'SHARDNUMSUB',
  subscribe: 'ssubscribe',
  unsubscribe: 'sunsubscribe',
  message: 'smessage',
  listing: 'SHARDCHANNELS',
};

/** The pub/sub of a key layout (the process's unless given): plain for single, sharded for bucketed. */
export const pubSubOf = (layout: KeyLayoutName = keyLayout().name): PubSubMode => (layout === 'bucketed' ? SHARDED : PLAIN);

/** The suffix of an attempt's channel: its key (keys.ts) and this, so channel and key share a slot. */
const ATTEMPT_CHANNEL_SUFFIX = ':changes';

/** Channel of one attempt's changes, named after its key (session:<id>:changes in the single layout). */
export const attemptChannel = (id: string): string => sessionKey(id) + ATTEMPT_CHANNEL_SUFFIX;
/** The one channel of a quiz's changes in the single layout (plain pub/sub). */
export const quizChannel = (quizId: string | number): string => `quiz:${quizId}:changes`;
/** The channel of the changes of a quiz's attempts in one bucket (bucketed layout): the bucket's hash tag first. */
export const quizBucketChannel = (quizId: string | number, tag: string): string => `quiz:${tag}:${quizId}:changes`;

/** What a stream follows: a name (every stream of it in a process shares one subscription) and its channels. */
export interface ChangeFeed {
  name: string;
  channels: readonly string[];
}

/**
 * The channel a change of this attempt reaches its quiz's feed on: the quiz's channel, or in the
 * bucketed layout the quiz's channel of the attempt's bucket (what the scripts publish on). The API
 * publishes the attempt's client events there too, as `{"client_event": …}` (a change is an array).
 */
export const quizChannelOf = (attempt: { id: string; quizId: string | number }): string =>
  pubSubOf().name === 'plain' ? quizChannel(attempt.quizId) : quizBucketChannel(attempt.quizId, BUCKET_TAGS[bucketOf(attempt.id)]);

/** An attempt's changes: its one channel. */
export const attemptFeed = (id: string): ChangeFeed => ({ name: attemptChannel(id), channels: [attemptChannel(id)] });

/** Every change of a quiz's attempts: its channel, or in the bucketed layout its channel in every bucket. */
export function quizFeed(quizId: string | number): ChangeFeed {
  const name = quizChannel(quizId);
  if (pubSubOf().name === 'plain') return { name, channels: [name] };
  return { name, channels: BUCKET_TAGS.map((tag) => quizBucketChannel(quizId, tag)) };
}

/** `template` as a Lua expression, each of `vars` (a placeholder -> a Lua variable) spliced in. */
function luaConcat(template: string, vars: Record<string, string>): string {
  const names = Object.keys(vars);
  const parts = template.split(new RegExp(`(${names.join('|')})`));
  return parts
    .filter((part) => part !== '')
    .map((part) => (names.includes(part) ? vars[part] : JSON.stringify(part)))
    .join(' .. ');
}

/** The quiz's channel of the attempt in KEYS[1], as a Lua function of the quiz id (`name`). */
function luaQuizChannel(mode: PubSubMode): string {
  if (mode.name === 'plain') return `local function quiz_channel(name) return ${luaConcat(quizChannel('@Q@'), { '@Q@': 'name' })} end`;
  // the hash tag of the attempt's key (Redis's rule: from the first '{' to the next '}'), so the
  // channel is in the script's slot: a script may not publish to another slot on a cluster
  return `local function quiz_channel(name)
  local tag = string.match(KEYS[1], '{[^}]+}')
  return ${luaConcat(quizBucketChannel('@Q@', '@T@'), { '@Q@': 'name', '@T@': 'tag' })}
end`;
}

/**
 * publish_change(out, meta): publishes render()'s `out` (the attempt) on the attempt's channel (its
 * key, KEYS[1], and the suffix) and on its quiz's, with the mode's command. Returns the message
 * (cjson.encode(out)), or nil when nobody follows either and nothing was encoded, so a caller that
 * keeps the same text (the progress script's idempotency record) encodes it once. Needs nothing
 * but cjson.
 */
export function channelsLua(mode: PubSubMode): string {
  return `
${luaQuizChannel(mode)}
local function publish_change(out, meta)
  local attempt_channel = KEYS[1] .. ${JSON.stringify(ATTEMPT_CHANNEL_SUFFIX)}
  -- quiz_id is kept as JSON text (a string or a number)
  local quiz = quiz_channel(tostring(cjson.decode(meta.quiz_id)))
  -- nobody follows either (no stream open on any API process): the message is not even encoded.
  -- Subscribers are on the master of the channels' slot (changeSubscriber.ts), where this runs.
  local listening = redis.call('PUBSUB', '${mode.count}', attempt_channel, quiz)
  if listening[2] == 0 and listening[4] == 0 then return nil end
  local message = cjson.encode(out)
  if listening[2] > 0 then redis.call('${mode.publish}', attempt_channel, message) end
  if listening[4] > 0 then redis.call('${mode.publish}', quiz, message) end
  return message
end
`;
}
