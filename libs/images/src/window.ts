// Import windows (settings.importWindow): when scheduled imports may run. Pure arithmetic over
// instants and an IANA time zone (through Intl), so DST and windows across midnight are exact.

/** `{ start: "HH:MM", end: "HH:MM", timezone }`: open from start (included) to end (excluded), local time. */
export type ImportWindow = { start: string; end: string; timezone: string };

export type WindowState = {
  /** Whether scheduled imports may run at this instant. */
  open: boolean;
  /** The next instant the window opens (when closed) or closes (when open); null without a window. */
  changesAt: Date | null;
};

const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** Minutes after midnight of "HH:MM" (00:00–23:59), or null when it is not one. */
export function parseClockTime(text: string): number | null {
  const match = HHMM.exec(text);
  return match ? Number(match[1]) * 60 + Number(match[2]) : null;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timezone: string): Intl.DateTimeFormat {
  let format = formatters.get(timezone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-US", {
      timeZone: timezone,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(timezone, format);
  }
  return format;
}

/** Whether `timezone` is an IANA zone this runtime knows ("UTC", "Europe/Paris"). */
export function isTimeZone(timezone: string): boolean {
  if (timezone.length === 0 || timezone.length > 64) return false;
  try {
    formatter(timezone);
    return true;
  } catch {
    return false;
  }
}

/**
 * A known zone with its name's case as the runtime spells it ("utc" → "UTC", "europe/paris" →
 * "Europe/Paris"). Only the case: an alias stays as typed ("Europe/Kyiv", "US/Eastern"), never
 * renamed to what this runtime's ICU calls canonical (that differs between Node versions).
 */
export function canonicalTimeZone(timezone: string): string {
  if (!isTimeZone(timezone)) return timezone;
  const spelled = formatter(timezone).resolvedOptions().timeZone;
  return spelled.toLowerCase() === timezone.toLowerCase() ? spelled : timezone;
}

/** Why a window is refused, or null when it is a good one. */
export function windowProblem(window: ImportWindow): string | null {
  const start = parseClockTime(window.start);
  const end = parseClockTime(window.end);
  if (start === null) return `start "${window.start}" is not a time HH:MM (00:00–23:59)`;
  if (end === null) return `end "${window.end}" is not a time HH:MM (00:00–23:59)`;
  if (start === end) return "start and end are the same time: an empty window, which never opens";
  if (!isTimeZone(window.timezone))
    return `timezone "${window.timezone}" is not an IANA time zone (e.g. UTC, Europe/Paris)`;
  return null;
}

/** Local wall-clock time at `ms` in `timezone`: minute of the day, and the zone's offset in minutes. */
function local(ms: number, timezone: string): { minute: number; offset: number } {
  const parts: Record<string, number> = {};
  for (const part of formatter(timezone).formatToParts(new Date(ms))) {
    if (part.type !== "literal") parts[part.type] = Number(part.value);
  }
  const wall = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!);
  const offset = Math.round((wall - Math.floor(ms / 1000) * 1000) / 60_000);
  return { minute: parts.hour! * 60 + parts.minute!, offset };
}

function inside(minute: number, start: number, end: number): boolean {
  return start < end ? minute >= start && minute < end : minute >= start || minute < end;
}

const MINUTE = 60_000;
const DAY_MINUTES = 24 * 60;

/**
 * Whether the window is open at `at`, and the next instant that changes. A null window is always
 * open. Across a DST change the window follows the local clock: a start that falls in a skipped hour
 * opens when the clock jumps past it; a local time that happens twice is in the window both times.
 */
export function windowState(window: ImportWindow | null, at: Date): WindowState {
  if (window === null) return { open: true, changesAt: null };
  const start = parseClockTime(window.start);
  const end = parseClockTime(window.end);
  if (start === null || end === null || start === end)
    throw new RangeError(windowProblem(window) ?? "bad window");
  const tz = window.timezone;
  const now = at.getTime();
  const open = inside(local(now, tz).minute, start, end);
  // Walk forward from the next minute boundary. While the offset holds, the local clock runs with
  // UTC, so the boundary is a plain distance away; where the offset changes first (found by halving),
  // the walk restarts from that minute. Zones change offset at most a few times a year.
  let from = Math.floor(now / MINUTE) * MINUTE + MINUTE;
  for (let step = 0; step < 8; step++) {
    const here = local(from, tz);
    if (inside(here.minute, start, end) !== open) return { open, changesAt: new Date(from) };
    const target = open ? end : start;
    const ahead = (target - here.minute + DAY_MINUTES) % DAY_MINUTES || DAY_MINUTES;
    const candidate = from + ahead * MINUTE;
    if (local(candidate, tz).offset === here.offset) return { open, changesAt: new Date(candidate) };
    // The offset changes in (from, candidate]: find the first minute with the new offset.
    let low = from;
    let high = candidate;
    while (high - low > MINUTE) {
      const mid = low + Math.floor((high - low) / MINUTE / 2) * MINUTE;
      if (local(mid, tz).offset === here.offset) low = mid;
      else high = mid;
    }
    from = high;
  }
  throw new Error(`no change of the import window found after ${at.toISOString()}`);
}

/** "01:00–05:00 UTC", or "any time" without a window: the one wording for the dashboard, CLI and audit. */
export function describeWindow(window: ImportWindow | null): string {
  return window === null ? "any time" : `${window.start}–${window.end} ${window.timezone}`;
}

/**
 * What the dashboard shows beside the hourly switch and in its import settings: "Hourly, 01:00–05:00
 * UTC" or "Hourly" while auto-import is on; "Hourly sync off (window 01:00–05:00 UTC)" or "Hourly
 * sync off" while it is off (a window kept for when it is on again is not a schedule that runs).
 */
export function describeSchedule(settings: {
  readonly autoImport: boolean;
  readonly importWindow: ImportWindow | null;
}): string {
  const window = settings.importWindow;
  if (!settings.autoImport)
    return window === null ? "Hourly sync off" : `Hourly sync off (window ${describeWindow(window)})`;
  return window === null ? "Hourly" : `Hourly, ${describeWindow(window)}`;
}

/**
 * A window as people type it, for the CLI and the dashboard: "01:00-05:00" (or with "–"), in
 * `timezone`; "off"/"none" is null. Throws a RangeError saying what is wrong.
 */
export function parseWindow(text: string, timezone = "UTC"): ImportWindow | null {
  const value = text.trim();
  if (value === "off" || value === "none") return null;
  const match = /^(\d{2}:\d{2})\s*[-–]\s*(\d{2}:\d{2})$/.exec(value);
  if (!match) throw new RangeError(`window "${text}": say e.g. 01:00-05:00 or off`);
  const window = { start: match[1]!, end: match[2]!, timezone };
  const problem = windowProblem(window);
  if (problem) throw new RangeError(problem);
  return { ...window, timezone: canonicalTimeZone(timezone) };
}

/** What asked for an import (the protocol's `ImportTrigger`). */
export type ImportCause = "schedule" | "manual" | "selection";

/** Whether an import asked for by `cause` may start now: only the schedule waits for the window. */
export function mayStartImport(cause: ImportCause, windowOpen: boolean): boolean {
  return windowOpen || cause !== "schedule";
}

/**
 * Whether the import running when the window closes pauses (its `.partial` files kept, resumed at
 * the next window). Only a run that nothing but the schedule asked for: a manual import and a saved
 * selection's run on, and so does a scheduled run that a saved selection has joined since it
 * started: the run downloads the saved images, and "a saved selection runs at once, whatever the
 * window", so pausing it would pause them too. (A selection run imports the whole selection, the
 * scheduled updates included, so a joined run that carries on does what the save alone would have.)
 */
export function pausesAtWindowEnd(run: { trigger: ImportCause; selectionJoined: boolean }): boolean {
  return run.trigger === "schedule" && !run.selectionJoined;
}

/**
 * What a region does at start with what it recorded: an import left unfinished (a crash, a
 * shutdown) resumes with its trigger; otherwise a scheduled import that was waiting for the window
 * (asked, or paused, while it was closed) is asked for again, and waits for the window or runs if
 * it is open. Null: nothing to resume.
 */
export function importToResume(
  unfinished: ImportCause | null,
  waitingForWindow: boolean,
): ImportCause | null {
  return unfinished ?? (waitingForWindow ? "schedule" : null);
}
