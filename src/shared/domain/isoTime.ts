const DAY_MS = 86_400_000;
/** 10000-01-01T00:00:00.000Z: from here on toISOString writes a six-digit, signed year. */
const YEAR_10000 = 253_402_300_800_000;

const pad2 = (n: number): string => (n < 10 ? '0' : '') + n;
const pad3 = (n: number): string => (n < 10 ? '00' : n < 100 ? '0' : '') + n;

/**
 * `new Date(ms).toISOString()` without the Date: every response writes four of these, and the
 * Date object and V8's formatter were a visible share of a GET's CPU. The calendar date comes from
 * the day number (Howard Hinnant's civil-from-days); times outside 1970..9999 go to Date itself.
 */
export function isoTime(ms: number): string {
  if (!(ms >= 0 && ms < YEAR_10000)) return new Date(ms).toISOString();
  const days = Math.floor(ms / DAY_MS);
  let rest = Math.floor(ms) - days * DAY_MS;
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
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  const millis = rest - seconds * 1000;
  return (
    year + '-' + pad2(month) + '-' + pad2(day) + 'T' + pad2(hours) + ':' + pad2(minutes) + ':' + pad2(seconds) + '.' + pad3(millis) + 'Z'
  );
}
