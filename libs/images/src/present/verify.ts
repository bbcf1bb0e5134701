// How a store verification reads, for the dashboard and the CLI alike.

import { formatBytes, formatTime } from "./format";
import { plural } from "./wording";
import { REPAIR_FAILED, type VerifyState } from "../verify";

export { IDLE_VERIFY, verifyOutcome, type VerifyOutcome, type VerifyState } from "../verify";

/** Percent of the bytes hashed, 0–100 (100 for an empty store). */
export function verifyPercent(state: VerifyState): number {
  if (state.bytesTotal <= 0) return state.running ? 0 : 100;
  return Math.min(100, Math.floor((state.bytesDone / state.bytesTotal) * 100));
}

/**
 * One line: "verifying 1.2 GiB of 4.0 GiB (30%), 1 corrupt file found", "verified 2026-12-02 05:30:
 * clean", "verified …: 1 corrupt file out of service (run verify --repair)", "never verified".
 */
export function verifySummary(state: VerifyState): string {
  const found = [
    state.corrupt.length ? `${plural(state.corrupt.length, "corrupt file")} out of service` : "",
    state.repaired.length ? `${plural(state.repaired.length, "file")} repaired` : "",
  ].filter(Boolean);
  if (state.running) {
    const what = state.repair ? "verifying and repairing" : "verifying";
    const bytes = `${formatBytes(state.bytesDone)} of ${formatBytes(state.bytesTotal)} (${verifyPercent(state)}%)`;
    return [`${what} ${bytes}`, ...found].join(", ");
  }
  if (state.startedAt === null && state.corrupt.length === 0) return "never verified";
  const when = state.finishedAt ? `verified ${formatTime(state.finishedAt)}` : "verification did not finish";
  // After repairs that failed, the error says why: the same repair again is no advice. A repair run
  // cut short (a shutdown, a weekly run stopped) still advises it.
  const repairFailed = state.error?.startsWith(REPAIR_FAILED) ?? false;
  const advice = state.corrupt.length && !repairFailed ? " (run verify --repair)" : "";
  const outcome = found.length ? found.join(", ") + advice : "clean";
  return `${when}: ${outcome}${state.error ? `; ${state.error}` : ""}`;
}
