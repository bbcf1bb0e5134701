import { pino, type Logger } from "pino";

export type { Logger } from "pino";

/**
 * JSON lines on stdout, or appended to `file` (the demo keeps the terminal for its own words).
 * `time` is ISO 8601 in UTC ("2026-12-03T10:24:50.123Z"), readable as it is and by any log shipper.
 */
export function createLogger(level: string, name: string, file?: string): Logger {
  const options = { level, name, base: { pid: process.pid }, timestamp: pino.stdTimeFunctions.isoTime };
  const destination = file ? pino.destination({ dest: file, mkdir: true, sync: false }) : undefined;
  return destination ? pino(options, destination) : pino(options);
}
