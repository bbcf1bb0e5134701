/** Redirect hops followed for one document or payload before giving up. */
export const MAX_REDIRECTS = 5;

export const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/**
 * Why a redirect from `from` (a URL of the source) to `to` is not followed, or null when it is.
 * Only the same origin is allowed, plus the upgrade of `http://host` to `https://host` on the default
 * port: a hostile or intercepted source must not make the region fetch from another host (the
 * region's own `/metrics`, a cloud metadata address, a service on the LAN) and report what it found.
 */
export function redirectRefusal(from: URL, to: URL | null): string | null {
  if (to === null) return "to an unreadable Location";
  if (to.protocol !== "http:" && to.protocol !== "https:") return `to a ${to.protocol} URL`;
  if (to.username !== "" || to.password !== "") return "to a URL with credentials";
  if (to.origin === from.origin) return null;
  const upgrade =
    from.protocol === "http:" && to.protocol === "https:" && from.hostname === to.hostname && to.port === "";
  if (upgrade && (from.port === "" || from.port === "80")) return null;
  return `to another origin (${to.origin})`;
}
