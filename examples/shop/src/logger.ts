import { type DyeLogEvent, setLogger, tenantLogMixin } from '@dye/core';
import { type logCreator, logLevel } from 'kafkajs';
import pino from 'pino';

/**
 * One JSON logger per service: every line names the service, the instance's
 * lane and the tenant of the work that logged it (tenantLogMixin). Dye's own
 * warnings go through it too.
 */
export function createLogger(service: string, lane: string): pino.Logger {
  const log = pino({ base: { service, lane }, mixin: tenantLogMixin, level: process.env.LOG_LEVEL ?? 'info' });
  setLogger({ warn: (event: DyeLogEvent) => log.warn({ code: event.code, ...event.details }, event.message) });
  return log;
}

/** kafkajs's log lines through the service's logger (kafkajs otherwise prints its own JSON shape). */
export function kafkaLogs(log: pino.Logger): logCreator {
  const kafkaLog = log.child({ component: 'kafkajs' });
  return () =>
    ({ namespace, level, log: entry }) => {
      const { message, timestamp: _timestamp, logger: _logger, ...fields } = entry;
      const line = { namespace, ...fields };
      if (level === logLevel.ERROR) kafkaLog.error(line, message);
      else if (level === logLevel.WARN) kafkaLog.warn(line, message);
      else if (level === logLevel.INFO) kafkaLog.info(line, message);
      else kafkaLog.debug(line, message);
    };
}
