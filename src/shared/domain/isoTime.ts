/** 10000-01-01T00:00:00.000Z: from here on toISOString writes a six-digit, signed year. */
const YEAR_10000 = 253_402_300_800_000;

const pad2 = (n: number): string => (n < 10 ? '0' : '') + n;
const pad3 = (n: number): string => (n < 10 ? '00' : n < 100 ? '0' : '') + n;

/** Slots of the cache of recent seconds' text (a power of two). */
const SECOND_SLOTS = 4096;
const slotSecond = new Float64Array(SECOND_SLOTS).fill(-1);
const slotText: string[] = new Array<string>(SECOND_SLOTS).fill('');

/**
 * `new Date(ms).toISOString()` without the Date: every response writes four of these, and the
 * Date object and V8's formatter were a visible share of a GET's CPU. The text up to the second
 * (`2026-12-02T01:52:17.`) is kept in a small cache by second, since the times of a response
 * (started, deadline, last update) are shared by the attempts started together and read again
 * and again; only the milliseconds are written each time. The calendar date comes from the day
 * number (Howard Hinnant's civil-from-days); times outside 1970..9999 go to Date itself.
 */
export function isoTime(ms: number): string {
  if (!(ms >= 0 && ms < YEAR_10000)) return new Date(ms).toISOString();
  const whole = Math.floor(ms);
  const second = Math.floor(whole / 1000);
  // ToInt32 keeps the low 32 bits of the (non-negative, integral) second: the slot is its low 12
  const slot = second & (SECOND_SLOTS - 1);
  let text = slotText[slot];
  if (slotSecond[slot] !== second) {
    text = secondText(second);
    slotSecond[slot] = second;
    slotText[slot] = text;
  }
  return text + pad3(whole - second * 1000) + 'Z';
}

/** `YYYY-MM-DDTHH:MM:SS.` of an epoch second from 1970 to 9999. */
function secondText(second: number): string {
  const days = Math.floor(second / 86_400);
  let rest = second - days * 86_400;
  // civil from days, for days since 1970-01-01 >= 0
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const hours = Math.floor(rest / 3600);
  rest -= hours * 3600;
  const minutes = Math.floor(rest / 60);
  const seconds = rest - minutes * 60;
  return year + '-' + pad2(month) + '-' + pad2(day) + 'T' + pad2(hours) + ':' + pad2(minutes) + ':' + pad2(seconds) + '.';
}
