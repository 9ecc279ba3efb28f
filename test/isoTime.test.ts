import fc from 'fast-check';
import { assertProperty } from './support/property';
import { isoTime } from '../src/shared/domain/isoTime';

const YEAR_10000 = 253_402_300_800_000;

describe('isoTime: the same text as Date.prototype.toISOString', () => {
  test('for any millisecond from 1970 to the end of 9999', () => {
    assertProperty(
      fc.property(fc.integer({ min: 0, max: YEAR_10000 - 1 }), (ms) => {
        expect(isoTime(ms)).toBe(new Date(ms).toISOString());
      }),
      { numRuns: 20_000 },
    );
  });

  test('at the edges of days, months, leap years and centuries', () => {
    const edges = [
      '1970-01-01T00:00:00.000Z',
      '1999-12-31T23:59:59.999Z',
      '2000-02-29T12:00:00.500Z',
      '2024-02-29T23:59:59.999Z',
      '2026-03-01T00:00:00.000Z',
      '2100-02-28T23:59:59.999Z',
      '2100-03-01T00:00:00.000Z',
      '2400-02-29T00:00:00.001Z',
      '9999-12-31T23:59:59.999Z',
    ];
    for (const text of edges) {
      const ms = Date.parse(text);
      for (const t of [ms - 1, ms, ms + 1]) if (t >= 0 && t < YEAR_10000) expect(isoTime(t)).toBe(new Date(t).toISOString());
    }
  });

  test('outside 1970..9999 it is Date itself, including the RangeError of an invalid time', () => {
    for (const ms of [-1, -86_400_001, -62_198_755_200_000, YEAR_10000, 8.64e15]) expect(isoTime(ms)).toBe(new Date(ms).toISOString());
    expect(() => isoTime(NaN)).toThrow(RangeError);
    expect(() => isoTime(8.64e15 + 1)).toThrow(RangeError);
  });

  test('a fractional millisecond is dropped, as Date drops it', () => {
    expect(isoTime(1_700_000_000_123.9)).toBe(new Date(1_700_000_000_123.9).toISOString());
  });

  test('times whose seconds share a slot of the seconds cache, taken in turns and near each other, each get their own text', () => {
    assertProperty(
      fc.property(
        fc.integer({ min: 0, max: Math.floor(YEAR_10000 / 1000) - 3 * 4096 - 1 }),
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 999 })), { minLength: 1, maxLength: 40 }),
        (second, picks) => {
          // the same slot: seconds 4096 apart
          for (const [k, millis] of picks) {
            const ms = (second + k * 4096) * 1000 + millis;
            expect(isoTime(ms)).toBe(new Date(ms).toISOString());
          }
        },
      ),
      { numRuns: 2_000 },
    );
  });
});
