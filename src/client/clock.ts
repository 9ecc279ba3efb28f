/** How many recent samples the clock keeps. */
const SAMPLES = 8;

/**
 * The server's clock as seen from here. Each `time` event of a stream carries `server_time`, sent
 * a little before it arrives: local receipt time minus that is the offset plus the delay. The
 * smallest delay is the best estimate, so the clock takes the largest offset among the last few
 * samples (a local clock that jumps is forgotten after SAMPLES events).
 */
export class ServerClock {
  private readonly samples: number[] = [];

  constructor(private readonly localNow: () => number = () => Date.now()) {}

  /** Records a `server_time` (ISO) received at `receivedAt` (local ms, now by default). */
  observe(serverTime: string, receivedAt: number = this.localNow()): void {
    const server = Date.parse(serverTime);
    if (!Number.isFinite(server)) return;
    this.samples.push(server - receivedAt);
    if (this.samples.length > SAMPLES) this.samples.shift();
  }

  /** True once a server time has been seen. */
  get synced(): boolean {
    return this.samples.length > 0;
  }

  /** Server ms minus local ms (0 before the first sample). */
  get offsetMs(): number {
    return this.samples.length === 0 ? 0 : Math.max(...this.samples);
  }

  /** The server's time now, ms. */
  now(): number {
    return this.localNow() + this.offsetMs;
  }
}

/** Seconds as `m:ss`, or `h:mm:ss` from an hour on. */
export function formatRemaining(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}
