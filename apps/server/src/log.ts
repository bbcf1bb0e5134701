import { pino, type Logger } from "pino";

export type { Logger } from "pino";

/** JSON lines on stdout, or appended to `file` (the demo keeps the terminal for its own words). */
export function createLogger(level: string, name: string, file?: string): Logger {
  const destination = file ? pino.destination({ dest: file, mkdir: true, sync: false }) : undefined;
  return destination
    ? pino({ level, name, base: { pid: process.pid } }, destination)
    : pino({ level, name, base: { pid: process.pid } });
}
