import type { HealthCheckName, HealthState } from "./state";

const CHECKS: readonly HealthCheckName[] = ["database", "redis"];

/**
 * The one wording of a degraded node (dashboard banner, CLI): "Region degraded: database writes
 * failing: SQLITE_FULL: database or disk is full". Null while the node is healthy.
 */
export function degradedText(health: HealthState | null | undefined): string | null {
  if (!health || health.status === "ok") return null;
  const parts = CHECKS.filter((check) => health.checks[check] === "failing").map((check) =>
    health.errors[check] ? `${check} ${health.errors[check]}` : `${check} failing`,
  );
  return `Region degraded: ${parts.length ? parts.join("; ") : "a check is failing"}`;
}
