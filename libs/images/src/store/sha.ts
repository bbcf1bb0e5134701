// Every store entry point takes a sha256 from outside (the network, the database, a URL path);
// checking it here is what keeps a crafted name like "../../etc" from ever becoming a path.
const SHA256_HEX = /^[0-9a-f]{64}$/;

export function isSha256(value: unknown): value is string {
  return typeof value === "string" && SHA256_HEX.test(value);
}

export function assertSha256(value: unknown): asserts value is string {
  if (!isSha256(value)) {
    const shown = typeof value === "string" ? JSON.stringify(value.slice(0, 80)) : typeof value;
    throw new TypeError(`not a sha256 (64 lowercase hex characters): ${shown}`);
  }
}
