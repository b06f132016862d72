/**
 * The sync client's pluggable logger. Levels follow the SDK's
 * (`error < warn < info < debug < trace`) plus `silent`. The default is
 * `silent` unless `NODE_ENV` is `development` (then `warn`).
 *
 * Every message passes through {@link redact} before it reaches a sink, so a
 * token (a JWT, or anything after `token=` / `Bearer`) is never printed.
 *
 * @module
 */

export type LogLevel = 'silent' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

/** Where log lines go. `console` satisfies it. */
export interface LogSink {
  error(message: string, ...data: unknown[]): void;
  warn(message: string, ...data: unknown[]): void;
  info(message: string, ...data: unknown[]): void;
  debug(message: string, ...data: unknown[]): void;
}

/** A levelled logger. Messages may be lazy (a function) so disabled levels cost nothing. */
export interface Logger {
  readonly level: LogLevel;
  enabled(level: Exclude<LogLevel, 'silent'>): boolean;
  log(level: Exclude<LogLevel, 'silent'>, message: string | (() => string)): void;
}

const RANK: Record<LogLevel, number> = { silent: -1, error: 0, warn: 1, info: 2, debug: 3, trace: 4 };

const JWT = /\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
const TOKEN_PARAM = /(token=)[^&\s"']+/gi;
const BEARER = /(Bearer\s+)\S+/gi;

/** Remove anything that looks like a token from a log line. */
export function redact(text: string): string {
  return text.replace(JWT, '[REDACTED]').replace(TOKEN_PARAM, '$1[REDACTED]').replace(BEARER, '$1[REDACTED]');
}

function defaultLevel(): LogLevel {
  const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
  return env?.NODE_ENV === 'development' ? 'warn' : 'silent';
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** @default 'silent' (or 'warn' when NODE_ENV is 'development') */
  level?: LogLevel;
  /** @default console */
  sink?: LogSink;
  /** Prefix of every line. @default '[stdb-rx]' */
  prefix?: string;
}

/** Build a {@link Logger}; pass an existing `Logger` through unchanged. */
export function createLogger(options: LoggerOptions | Logger | undefined): Logger {
  if (options && 'log' in options && 'enabled' in options) return options;
  const opts = (options ?? {}) as LoggerOptions;
  const level = opts.level ?? defaultLevel();
  const sink = opts.sink ?? console;
  const prefix = opts.prefix ?? '[stdb-rx]';
  const enabled = (l: Exclude<LogLevel, 'silent'>) => RANK[l] <= RANK[level];
  return {
    level,
    enabled,
    log(l, message) {
      if (!enabled(l)) return;
      const text = redact(`${prefix} ${typeof message === 'function' ? message() : message}`);
      switch (l) {
        case 'error':
          return sink.error(text);
        case 'warn':
          return sink.warn(text);
        case 'info':
          return sink.info(text);
        default:
          return sink.debug(text);
      }
    },
  };
}
