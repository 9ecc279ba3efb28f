/*
 * The Redis key names of the live state, in one of two layouts (REDIS_KEY_LAYOUT):
 *
 *   single    the seeds' names: session:<id>, session:<id>:events, session:<id>:idem:<digest>, one
 *             dirty set sessions:dirty (seed-2 tooling deletes session:<id> to force the PostgreSQL
 *             path). For one Redis, or Redis behind Sentinel.
 *   bucketed  for a Redis Cluster: every key of an attempt carries the hash tag of its bucket
 *             (DIRTY_BUCKETS of them, by a hash of the id), and so does the dirty set of that
 *             bucket: session:{<b>}:<id>, session:{<b>}:<id>:events, …, sessions:dirty:{<b>}.
 *             Each script call then touches keys of one hash slot, and no key on the write path is
 *             shared by all attempts: the dirty index spreads over the shards; sweeps and shutdown
 *             flushes visit every bucket.
 *
 * The attempt's pub/sub channel is its key plus `:changes`, and in the bucketed layout a quiz has one
 * channel per bucket, tagged as the bucket (channels.ts), so a script publishes within its slot.
 */

/** The key layouts. */
export const KEY_LAYOUTS = ['single', 'bucketed'] as const;
/** A key layout. */
export type KeyLayoutName = (typeof KEY_LAYOUTS)[number];

/** How many buckets the bucketed layout spreads attempts (and their dirty sets) over. */
export const DIRTY_BUCKETS = 1024;

/** The dirty set of the single layout. */
export const SINGLE_DIRTY_SET_KEY = 'sessions:dirty';

/** FNV-1a (32 bits) of a string: a stable, cheap hash for the bucket of an id. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** The bucket of an attempt id (bucketed layout). */
export const bucketOf = (id: string): number => fnv1a(id) % DIRTY_BUCKETS;

/** The key names of one layout. */
export interface KeyLayout {
  name: KeyLayoutName;
  /** The attempt's hash. */
  session(id: string): string;
  /** The dirty set the attempt is listed in while PostgreSQL lacks its latest state. */
  dirtySetOf(id: string): string;
  /** Every dirty set (a sweep visits them all). */
  dirtySets(): readonly string[];
  /** The attempt id of a session hash's key, or null for any other key. */
  idOf(key: string): string | null;
}

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

const single: KeyLayout = {
  name: 'single',
  session: (id) => `session:${id}`,
  dirtySetOf: () => SINGLE_DIRTY_SET_KEY,
  dirtySets: () => [SINGLE_DIRTY_SET_KEY],
  idOf: (key) => new RegExp(`^session:(${UUID})$`, 'i').exec(key)?.[1] ?? null,
};

/** The hash tag of a bucket, `{<b>}`: every key (and channel) of the bucket carries it. */
const bucketTag = (bucket: number): string => `{${bucket}}`;

/** Every bucket's hash tag, in bucket order. */
export const BUCKET_TAGS: readonly string[] = Array.from({ length: DIRTY_BUCKETS }, (_, b) => bucketTag(b));

const BUCKETED_DIRTY_SETS = BUCKET_TAGS.map((tag) => `sessions:dirty:${tag}`);

const bucketed: KeyLayout = {
  name: 'bucketed',
  session: (id) => `session:${BUCKET_TAGS[bucketOf(id)]}:${id}`,
  dirtySetOf: (id) => BUCKETED_DIRTY_SETS[bucketOf(id)],
  dirtySets: () => BUCKETED_DIRTY_SETS,
  idOf: (key) => new RegExp(`^session:\\{[0-9]+\\}:(${UUID})$`, 'i').exec(key)?.[1] ?? null,
};

const LAYOUTS: Record<KeyLayoutName, KeyLayout> = { single, bucketed };

// the environment's choice from the start (tools and tests that make a store without a runtime);
// a runtime sets it again from its validated configuration
let current: KeyLayout = process.env.REDIS_KEY_LAYOUT === 'bucketed' ? bucketed : single;

/** Chooses the process's layout (once, at start-up, from REDIS_KEY_LAYOUT). */
export function useKeyLayout(name: KeyLayoutName): void {
  current = LAYOUTS[name];
}

/** The process's layout. */
export const keyLayout = (): KeyLayout => current;

/** Redis key of an attempt's live state. */
export const sessionKey = (id: string): string => current.session(id);
/** Redis key of an attempt's events not yet in PostgreSQL (a list of JSON texts, in seq order). */
export const eventsKey = (id: string): string => `${current.session(id)}:events`;
/** The dirty set an attempt is listed in. */
export const dirtySetOf = (id: string): string => current.dirtySetOf(id);
