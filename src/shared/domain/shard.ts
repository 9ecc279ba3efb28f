import { createHash, randomUUID } from 'node:crypto';

/*
 * The PostgreSQL shard key of an attempt: a number in [0, SHARD_SPACE) derived from its user_id, so
 * every attempt of one user (and with it the one-open-attempt rule) lives in one partition. It leads
 * the primary key (shard, id), the one-open unique index (shard, user_id, quiz_id) and the event
 * log's key (shard, attempt_id, seq); the tables are hash-partitioned by it (PG_PARTITIONS) and a
 * Citus cluster distributes them by it (docs/SCALING.md).
 *
 * The rule is here once, in TypeScript (shardOf) and as SQL (shardSql): a check constraint makes
 * PostgreSQL verify every row against it, and test/shard.test.ts compares the two.
 *
 * An attempt id carries its shard: the first SHARD_HEX_DIGITS hex digits of a new id are the shard
 * (the id stays a random UUID v4 with 110 random bits), so a lookup by id alone knows the partition.
 * Ids made before the shard key (or by hand) carry no such promise: a lookup that misses under the
 * id's shard asks every partition once more (sessionRepository.findById).
 */

/** Hex digits of the MD5 of user_id that make the shard: 3, so 4,096 shards. Fixed forever. */
const SHARD_HEX_DIGITS = 3;
/** How many shard key values there are; the PG_PARTITIONS partitions each hold a share of them. */
export const SHARD_SPACE = 16 ** SHARD_HEX_DIGITS;

/** The shard of a user's attempts: the first three hex digits of MD5(user_id) (UTF-8), as a number. */
export function shardOf(userId: string): number {
  return parseInt(createHash('md5').update(userId, 'utf8').digest('hex').slice(0, SHARD_HEX_DIGITS), 16);
}

/** The same rule in SQL, over a text column or expression (a constant of the code, never input). */
export function shardSql(userIdColumn: string): string {
  return `('x' || substr(md5(${userIdColumn}), 1, ${SHARD_HEX_DIGITS}))::bit(${SHARD_HEX_DIGITS * 4})::integer`;
}

/** A new attempt id for this user: a random UUID v4 whose first three hex digits are the user's shard. */
export function attemptIdFor(userId: string): string {
  const shard = shardOf(userId).toString(16).padStart(SHARD_HEX_DIGITS, '0');
  return shard + randomUUID().slice(SHARD_HEX_DIGITS);
}

/** The shard an attempt id names (attemptIdFor): right for every id the service made since the shard key. */
export function shardOfId(id: string): number {
  return parseInt(id.slice(0, SHARD_HEX_DIGITS), 16);
}

/** shardOfId in SQL, over a uuid column (a constant of the code, never input). */
export function shardOfIdSql(idColumn: string): string {
  return `('x' || substr(${idColumn}::text, 1, ${SHARD_HEX_DIGITS}))::bit(${SHARD_HEX_DIGITS * 4})::integer`;
}
