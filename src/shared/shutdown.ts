import type { Logger } from './logger';

/**
 * When a resource closes on shutdown, earliest first; resources of one step close together. Stop
 * taking work, finish it, write what is unpersisted, then close what that needed.
 */
export enum ShutdownOrder {
  /** The HTTP server and the queue workers stop taking requests and jobs (active ones finish). */
  StopIntake = 0,
  /** The persister writes every batch it holds. */
  DrainPersister = 10,
  /** The persist worker writes every attempt still dirty, within the shutdown budget. */
  FlushDirty = 20,
  /** The queue connections close. */
  CloseQueues = 30,
  /** The metrics server closes (scraped until the work is done). */
  CloseMetrics = 40,
  /** Redis and PostgreSQL close, last: everything before may need them. */
  CloseStores = 50,
}

type Closer = { name: string; close: () => Promise<unknown>; order: ShutdownOrder };

/**
 * One registry every resource registers its close with. On SIGTERM/SIGINT the closers run in order
 * (lower first: stop taking work, then drain, then close connections), bounded by a timeout. The
 * log is flushed last, after "shutdown complete" (a buffered writer: logger.ts); should the timeout
 * end the process first, the logger's exit hook writes what it still holds.
 */
export class Shutdown {
  private readonly closers: Closer[] = [];
  private running: Promise<void> | null = null;

  constructor(
    private readonly log: Logger,
    private readonly timeoutMs: number,
  ) {}

  /** Registers a resource to close at step `order`. */
  add(name: string, close: () => Promise<unknown>, order: ShutdownOrder): void {
    this.closers.push({ name, close, order });
  }

  /** Runs every closer once (later calls await the same run). */
  run(reason: string): Promise<void> {
    this.running ??= this.closeAll(reason);
    return this.running;
  }

  /** Exits the process when SIGTERM or SIGINT arrives, after closing everything. */
  installSignalHandlers(): void {
    const onSignal = (signal: NodeJS.Signals) => {
      // an exit after an error line waits for the log (bounded: logger.ts), so the line is out
      const fail = (line: string) => {
        this.log.error(line);
        void this.log.flush().finally(() => process.exit(1));
      };
      const timer = setTimeout(() => fail(`shutdown took longer than ${this.timeoutMs}ms; exiting`), this.timeoutMs);
      timer.unref();
      this.run(signal).then(
        () => process.exit(0),
        (err) => fail(`shutdown failed: ${String(err)}`),
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  }

  private async closeAll(reason: string): Promise<void> {
    this.log.info(`shutting down (${reason})`);
    const orders = [...new Set(this.closers.map((c) => c.order))].sort((a, b) => a - b);
    for (const order of orders) {
      await Promise.all(
        this.closers
          .filter((c) => c.order === order)
          .map(async (c) => {
            try {
              await c.close();
            } catch (err) {
              this.log.warn(`closing ${c.name} failed: ${String(err)}`);
            }
          }),
      );
    }
    this.log.info('shutdown complete');
    // the log last: its writer holds lines (LOG_FLUSH_INTERVAL_MS) that must be out before the exit
    await this.log.flush();
  }
}
