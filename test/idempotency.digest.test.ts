import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { attemptRecordKey, fingerprint, sha256, startRecordKey } from '../src/shared/store/idempotencyStore';
import { sessionKey } from '../src/shared/store/keys';
import { assertProperty } from './support/property';

/*
 * The idempotency digests (idempotencyStore.ts) are the ones records were written under before the
 * one-shot hash: SHA-256 of the parts fed to a Hash object one by one, as the earlier code did. A
 * record kept across an upgrade must still be found, and still match its request. Strings of any
 * UTF-16 code units, lone surrogates included.
 */

const streamed = (...parts: string[]): string => {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part);
  return hash.digest('base64url');
};

const anyText = fc.string({ unit: 'binary', maxLength: 40 });

test('sha256 is the digest of a Hash object', () => {
  assertProperty(fc.property(anyText, (text) => expect(sha256(text)).toBe(streamed(text))));
});

test('the record keys and the fingerprint are those of the parts hashed one by one', () => {
  assertProperty(
    fc.property(anyText, anyText, anyText, fc.jsonValue(), (caller, key, ifMatch, body) => {
      const id = '6f1c1f6e-3b7a-4c1d-9a51-8d2f0c4e5b61';
      expect(attemptRecordKey(id, caller, key)).toBe(`${sessionKey(id)}:idem:${streamed(caller, '\0', key)}`);
      expect(startRecordKey(caller, key)).toBe(`idem:start:${streamed(caller, '\0', key)}`);
      expect(fingerprint('PATCH progress', ifMatch, body)).toBe(
        streamed('PATCH progress', '\0', ifMatch, '\0', JSON.stringify(body ?? {})),
      );
    }),
  );
});
