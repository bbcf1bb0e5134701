// Where the dashboard's token comes from: `#token=…` in the address (wall screens), else localStorage.

export const TOKEN_KEY = "bootstream.token";

/** Splits `#token=abc&x=1` into the token and what is left of the hash ("" or "#x=1"). */
export function tokenFromHash(hash: string): { token: string | null; rest: string } {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const token = params.get("token");
  if (token === null) return { token: null, rest: hash };
  params.delete("token");
  const rest = params.toString();
  return { token: token.trim() || null, rest: rest ? `#${rest}` : "" };
}

function storage(): Storage | null {
  try {
    return typeof localStorage === "undefined" ? null : localStorage;
  } catch {
    return null; // storage disabled by the browser
  }
}

export function loadToken(): string | null {
  return storage()?.getItem(TOKEN_KEY) ?? null;
}

export function saveToken(token: string): void {
  storage()?.setItem(TOKEN_KEY, token);
}

export function forgetToken(): void {
  storage()?.removeItem(TOKEN_KEY);
}

export const REPLACE_TOKEN_QUESTION =
  "This link carries another API token than the one this browser holds. Replace the stored token " +
  "with the link's? (Cancel keeps the stored one; a link can be made by anyone.)";

/**
 * What a `#token=` does: nothing without one; taken at once when nothing (or the same token) is
 * stored; otherwise the user is asked, since any site can link here with a token of its choosing.
 */
export function hashTokenChoice(stored: string | null, fromHash: string | null): "keep" | "take" | "ask" {
  if (fromHash === null) return "keep";
  if (stored === null || stored === fromHash) return "take";
  return "ask";
}

/**
 * Takes a `#token=` from the address (and removes it from the address bar and the history entry, so it
 * is not left on screen or in bookmarks), else the stored token. A link's token replaces a stored,
 * different one only if `confirmReplace` says so.
 */
export function takeToken(
  confirmReplace: (question: string) => boolean = (question) => window.confirm(question),
): string | null {
  const { token, rest } = tokenFromHash(window.location.hash);
  if (token !== null) {
    const { pathname, search } = window.location;
    window.history.replaceState(window.history.state, "", `${pathname}${search}${rest}`);
  }
  const stored = loadToken();
  const choice = hashTokenChoice(stored, token);
  if (choice === "take" || (choice === "ask" && confirmReplace(REPLACE_TOKEN_QUESTION))) {
    saveToken(token!);
    return token;
  }
  return stored;
}
