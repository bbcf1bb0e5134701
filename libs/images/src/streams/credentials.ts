/** A boot source's HTTP Basic credentials, kept apart from its URL (which is shown everywhere). */
export type SourceCredentials = { username: string; password: string };

/**
 * Takes `user:pass@` out of a source URL: the URL that is left is what gets stored and shown, and
 * the credentials travel only as an `Authorization: Basic` header. Leaves a URL that does not parse
 * as it is (the caller's validation says why).
 */
export function splitCredentials(url: string): { url: string; credentials: SourceCredentials | null } {
  const parsed = URL.parse(url.trim());
  if (parsed === null || (parsed.username === "" && parsed.password === "")) {
    return { url, credentials: null };
  }
  const credentials = {
    username: decodeURIComponent(parsed.username),
    password: decodeURIComponent(parsed.password),
  };
  parsed.username = "";
  parsed.password = "";
  return { url: parsed.href, credentials };
}

/** The `Authorization` header value for credentials (RFC 7617, UTF-8). */
export function basicAuthorization(credentials: SourceCredentials): string {
  const pair = `${credentials.username}:${credentials.password}`;
  return `Basic ${Buffer.from(pair, "utf8").toString("base64")}`;
}
