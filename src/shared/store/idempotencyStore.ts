import * as crypto from 'node:crypto';
import type { RedisClient } from '../redis';
import { ServiceUnavailableError } from '../errors';
import { IDEMPOTENCY_LOCK_SECONDS, IDEMPOTENCY_TTL_SECONDS } from '../domain/idempotency';
import { sessionKey } from './sessionStore';

/*
 * Idempotency keys: the first response to a request carrying `Idempotency-Key` is kept for 24 h
 * per caller and key; a retry with the same request gets it again and applies nothing.
 *
 * A record is one Redis string, JSON:
 *   {"fp", "state": "pending"}                       the first request is still running
 *   {"fp", "state": "done", "status", "headers", "body"}   its response, as sent
 *   {"fp", "rid", "at", "state": "done", "code", "r"}     a progress write's outcome, kept by the
 *                                                    progress script itself (the script's code and
 *                                                    the attempt after it; the API renders it again
 *                                                    exactly as it did, at `at`, with request id `rid`)
 * `fp` is the request's fingerprint (route, If-Match and body): the same key with another
 * request is refused.
 *
 * The record of a request on an attempt lives beside the attempt (session:<id>:idem:<digest>), so
 * the progress script can read and write it with the attempt, and on a cluster both share a slot;
 * the record of a start is the caller's (idem:start:<digest>). The digest hashes caller and key.
 */

/** A request's claim on its key: where its record lives and what identifies the request. */
export interface IdempotencyClaim {
  recordKey: string;
  fingerprint: string;
}

/** What a key's record holds. */
export type IdempotencyRecord =
  | { fp: string; state: 'pending' }
  | { fp: string; state: 'done'; status: number; headers: Record<string, string>; body: string }
  | { fp: string; state: 'done'; rid: string | null; at: number; code: string; r: string[] };

/**
 * SHA-256 of `text` (as UTF-8), base64url: Node's one-shot `crypto.hash` where it has it (20.12 and
 * later), about a quarter of the cost of a Hash object (createHash), of which a write with a key
 * made two (8 µs of its API CPU); the same digest either way.
 */
export const sha256 =
  typeof crypto.hash === 'function'
    ? (text: string): string => crypto.hash('sha256', text, 'base64url')
    : (text: string): string => crypto.createHash('sha256').update(text).digest('base64url');

const digest = (caller: string, key: string): string => sha256(`${caller}\0${key}`);

/** The record key of a request on attempt `id` by `caller` with `key`. */
export const attemptRecordKey = (id: string, caller: string, key: string): string => `${sessionKey(id)}:idem:${digest(caller, key)}`;
/** The record key of a start by `caller` with `key`. */
export const startRecordKey = (caller: string, key: string): string => `idem:start:${digest(caller, key)}`;

/** The fingerprint of a request: its route, the version it expects (If-Match) and its body. */
export function fingerprint(route: string, ifMatch: string, body: unknown): string {
  return sha256(`${route}\0${ifMatch}\0${JSON.stringify(body ?? {})}`);
}

/** The JSON the progress script starts its record with (it adds the code and the attempt). */
export const scriptRecordPrefix = (claim: IdempotencyClaim, requestId: string | null, at: number): string =>
  `{"fp":${JSON.stringify(claim.fingerprint)},"rid":${JSON.stringify(requestId)},"at":${at},"state":"done"`;

const failed = (): never => {
  throw new ServiceUnavailableError('redis');
};

/** The records of the requests the API handles outside a script (start, complete, abandon, the controls). */
export class IdempotencyStore {
  constructor(private readonly redis: RedisClient) {}

  /** Claims the key for this request: null when claimed, else the record already there. */
  async claim(claim: IdempotencyClaim): Promise<IdempotencyRecord | null> {
    const pending = JSON.stringify({ fp: claim.fingerprint, state: 'pending' });
    for (;;) {
      const set = await this.redis.set(claim.recordKey, pending, 'EX', IDEMPOTENCY_LOCK_SECONDS, 'NX').catch(failed);
      if (set === 'OK') return null;
      const held = await this.redis.get(claim.recordKey).catch(failed);
      // gone between the two (its claim ran out): claim again
      if (held !== null) return JSON.parse(held) as IdempotencyRecord;
    }
  }

  /** Keeps the response for the key. */
  async save(claim: IdempotencyClaim, response: { status: number; headers: Record<string, string>; body: string }): Promise<void> {
    const record: IdempotencyRecord = { fp: claim.fingerprint, state: 'done', ...response };
    await this.redis.set(claim.recordKey, JSON.stringify(record), 'EX', IDEMPOTENCY_TTL_SECONDS).catch(failed);
  }

  /** Gives the key up (the request failed in a way a retry should run again), unless another request holds it. */
  async release(claim: IdempotencyClaim): Promise<void> {
    const held = await this.redis.get(claim.recordKey).catch(failed);
    if (held === null) return;
    const record = JSON.parse(held) as IdempotencyRecord;
    if (record.state === 'pending' && record.fp === claim.fingerprint) await this.redis.del(claim.recordKey).catch(failed);
  }
}
