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

/**
 * Takes a `#token=` from the address (and removes it from the address bar and the history entry, so it
 * is not left on screen or in bookmarks), else the stored token.
 */
export function takeToken(): string | null {
  const { token, rest } = tokenFromHash(window.location.hash);
  if (token !== null) {
    saveToken(token);
    const { pathname, search } = window.location;
    window.history.replaceState(window.history.state, "", `${pathname}${search}${rest}`);
    return token;
  }
  return loadToken();
}
