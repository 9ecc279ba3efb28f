import type { Config } from './config';

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 } as const;

/** A plain line logger to stdout/stderr, filtered by LOG_LEVEL. */
export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** True when messages of this level are written. */
  enabled(level: keyof typeof LEVELS): boolean;
}

/** A logger whose lines start with `[session-service]` (the seeds' format) and the process role. */
export function createLogger(level: Config['LOG_LEVEL'], role = ''): Logger {
  const min = LEVELS[level];
  const tag = role ? `[session-service:${role}]` : '[session-service]';
  const write = (lvl: keyof typeof LEVELS, msg: string) => {
    if (LEVELS[lvl] < min) return;
    const line = lvl === 'info' ? `${tag} ${msg}\n` : `${tag} ${lvl.toUpperCase()} ${msg}\n`;
    (LEVELS[lvl] >= LEVELS.warn ? process.stderr : process.stdout).write(line);
  };
  return {
    debug: (m) => write('debug', m),
    info: (m) => write('info', m),
    warn: (m) => write('warn', m),
    error: (m) => write('error', m),
    enabled: (lvl) => LEVELS[lvl] >= min,
  };
}
