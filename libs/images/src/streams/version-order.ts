// Upstream names versions `20250615`, `20231004.0` and `20240622_01`. Plain string order gets
// `20240622_9` vs `20240622_10` wrong, so runs of digits compare as numbers and separators only split.
const TOKENS = /\d+|[A-Za-z]+/g;

function compareDigits(a: string, b: string): number {
  // Compared as strings without leading zeros: version runs can outgrow Number's exact integers.
  const x = a.replace(/^0+(?=\d)/, "");
  const y = b.replace(/^0+(?=\d)/, "");
  if (x.length !== y.length) return x.length - y.length;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Orders version names oldest first; a name that extends another (`20231004.0` vs `20231004`) is newer. */
export function compareVersionNames(a: string, b: string): number {
  const ta = a.match(TOKENS) ?? [];
  const tb = b.match(TOKENS) ?? [];
  for (let i = 0; i < Math.min(ta.length, tb.length); i++) {
    const x = ta[i] as string;
    const y = tb[i] as string;
    const xNumeric = /^\d/.test(x);
    const yNumeric = /^\d/.test(y);
    // A suffix word (`rc`) sorts before a number at the same place, as pre-releases do.
    if (xNumeric !== yNumeric) return xNumeric ? 1 : -1;
    const order = xNumeric ? compareDigits(x, y) : x < y ? -1 : x > y ? 1 : 0;
    if (order !== 0) return order;
  }
  if (ta.length !== tb.length) return ta.length - tb.length;
  // Equal by meaning (`_01` vs `.1`): fall back to the raw text so the order stays total and stable.
  return a < b ? -1 : a > b ? 1 : 0;
}

export function newestVersionName(names: Iterable<string>): string | undefined {
  let newest: string | undefined;
  for (const name of names) {
    if (newest === undefined || compareVersionNames(name, newest) > 0) newest = name;
  }
  return newest;
}
