import { sessionKey } from './keys';

/*
 * The pub/sub channels of attempt changes: every change a write script applies is published from
 * inside that script (no round trip of its own), on the attempt's channel and on its quiz's. The
 * message is the attempt as render() gives it (includes/render.lua), as JSON text: a subscriber
 * decodes it with decodeRendered, no read of its own.
 */

/** The suffix of an attempt's channel: its key (keys.ts) and this, so channel and key share a slot. */
const ATTEMPT_CHANNEL_SUFFIX = ':changes';

/** Channel of one attempt's changes, named after its key (session:<id>:changes in the single layout). */
export const attemptChannel = (id: string): string => sessionKey(id) + ATTEMPT_CHANNEL_SUFFIX;
/** Channel of the changes of every attempt of a quiz. */
export const quizChannel = (quizId: string | number): string => `quiz:${quizId}:changes`;

/** Suffix of a quiz's client-event channel: the events students' pages report, published by the API (not a change of the attempt). */
export const CLIENT_EVENTS_SUFFIX = ':client-events';
/** Channel of the client events (connection lost or restored, page blurred, …) of every attempt of a quiz. */
export const quizClientEventsChannel = (quizId: string | number): string => `quiz:${quizId}${CLIENT_EVENTS_SUFFIX}`;

const ID = '@@';

/** A channel template as a Lua expression over `name`: `quiz:@@:changes` -> `'quiz:' .. name .. ':changes'`. */
function luaChannel(of: (name: string) => string): string {
  const [before, after] = of(ID).split(ID);
  return `${JSON.stringify(before)} .. name .. ${JSON.stringify(after)}`;
}

/**
 * publish_change(out, meta): publishes render()'s `out` (the attempt) on the attempt's channel (its
 * key, KEYS[1], and the suffix) and on its quiz's. Needs nothing but cjson.
 */
export const CHANNELS_LUA = `
local function quiz_channel(name) return ${luaChannel(quizChannel)} end
local function publish_change(out, meta)
  local message = cjson.encode(out)
  redis.call('PUBLISH', KEYS[1] .. ${JSON.stringify(ATTEMPT_CHANNEL_SUFFIX)}, message)
  -- quiz_id is kept as JSON text (a string or a number)
  redis.call('PUBLISH', quiz_channel(tostring(cjson.decode(meta.quiz_id))), message)
end
`;
