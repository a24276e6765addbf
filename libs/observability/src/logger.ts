import type { LoggerService } from '@nestjs/common';
import { pino, type Logger, type LoggerOptions } from 'pino';
import { requestContext } from './request-context.js';

export type { Logger } from 'pino';

/**
 * Field names whose values are never written to a log line, wherever they appear in the first
 * two levels of an object.
 */
const REDACT = ['authorization', 'apiKey', 'key', 'secret', 'password', 'token'];

export interface LoggerSettings {
  service: string;
  level?: string;
  /** A destination other than stdout, for tests that read the log. */
  destination?: pino.DestinationStream;
}

/** The process's root logger: JSON lines, the service name and the current request id on each. */
export function createLogger(settings: LoggerSettings): Logger {
  const options: LoggerOptions = {
    level: settings.level ?? 'info',
    base: { service: settings.service, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    messageKey: 'msg',
    redact: {
      paths: [...REDACT, ...REDACT.map((k) => `*.${k}`), 'req.headers.authorization'],
      censor: '[redacted]',
    },
    formatters: { level: (label) => ({ level: label }) },
    mixin() {
      const ctx = requestContext.get();
      return ctx ? { requestId: ctx.requestId, ...(ctx.accountId ? { accountId: ctx.accountId } : {}) } : {};
    },
  };
  return settings.destination ? pino(options, settings.destination) : pino(options);
}

/** NestJS's logger interface on top of pino, so framework messages are JSON lines too. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

  log(message: unknown, ...rest: unknown[]): void {
    this.write('info', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.write('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.write('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.write('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.write('trace', message, rest);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.write('fatal', message, rest);
  }

  private write(level: pino.Level, message: unknown, rest: unknown[]): void {
    // Nest passes the context (a class name) last; an error's stack comes before it.
    const context = typeof rest.at(-1) === 'string' ? (rest.at(-1) as string) : undefined;
    const fields: Record<string, unknown> = context ? { context } : {};
    if (message instanceof Error) {
      this.logger[level]({ ...fields, err: message }, message.message);
    } else if (typeof message === 'object' && message !== null) {
      this.logger[level]({ ...fields, ...(message as Record<string, unknown>) });
    } else {
      this.logger[level](fields, String(message));
    }
  }
}
