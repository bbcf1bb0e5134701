import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { readSource } from "@bootstream/images";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mirrorCommand } from "./command";
import { parseSize } from "./sizes";

let root: string;

async function run(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await mirrorCommand(argv, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
  });
  return { code, stdout, stderr };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "bootstream-mirror-cli-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("bootstream mirror", () => {
  it.each([
    ["create", "--help", /^usage:\n {2}bootstream mirror create DIR/, /SYNTHETIC/],
    [
      "sync",
      "--help",
      /^usage:\n {2}bootstream mirror sync SOURCE_URL DIR/,
      /--progress: files, bytes, rate and ETA/,
    ],
    ["add-version", "-h", /^usage:\n {2}bootstream mirror add-version DIR/, /synthetic version/],
    ["keygen", "--help", /^usage:\n {2}bootstream mirror keygen DIR/, /signing\.pub\.asc/],
  ])("%s %s prints that subcommand's usage only and exits 0", async (sub, flag, head, body) => {
    const result = await run(sub, flag);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toMatch(head);
    expect(result.stdout).toMatch(body);
    // No other subcommand's line.
    const others = ["sync", "create", "add-version", "keygen"].filter((other) => other !== sub);
    for (const other of others) expect(result.stdout).not.toContain(`bootstream mirror ${other} `);
  });

  it("a usage error shows the usage of its subcommand", async () => {
    const result = await run("keygen");
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      "bootstream mirror: give exactly one directory\nusage:\n" +
        "  bootstream mirror keygen DIR                           write signing.key.asc and signing.pub.asc\n",
    );
  });

  it.each([
    [["sync", "http://x/"], /give SOURCE_URL and DIR/],
    [["sync", "http://x/", "d", "arch"], /filter "arch" is not key=value/],
    [["sync", "http://x/", "d", "--max", "0"], /--max: "0"/],
    [["sync", "http://x/", "d", "--keyring", "/nonexistent.asc"], /--keyring: cannot read/],
    [["sync", "http://x/", "d", "--progress", "--json"], /--progress or --json/],
  ])("sync %j is a usage error", async (argv, message) => {
    const result = await run(...argv);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
  });

  it("keygen, then create --sign: a mirror that verifies with the written public key", async () => {
    const keys = join(root, "keys");
    expect((await run("keygen", keys)).code).toBe(0);
    expect((await stat(join(keys, "signing.key.asc"))).mode & 0o777).toBe(0o600);
    const again = await run("keygen", keys);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/exists; not overwriting/);

    const dir = join(root, "signed");
    const created = await run(
      "create",
      dir,
      "--sign",
      join(keys, "signing.key.asc"),
      "--releases",
      "noble",
      "--arches",
      "amd64",
      "--versions",
      "3",
      "--centos",
      "none",
      "--payload-size",
      "2KiB",
      "--squashfs-size",
      "8KiB",
    );
    expect(created).toMatchObject({ code: 0, stderr: "" });
    expect(created.stdout).toContain("mirror (signed) written to");
    const contents = await readSource({
      url: pathToFileURL(dir).href,
      keyring: await readFile(join(keys, "signing.pub.asc"), "utf8"),
    });
    expect(contents.images.map((i) => [i.id, i.version])).toEqual([["ubuntu/noble/amd64", "20250629"]]);
    expect(contents.images[0]?.files.find((f) => f.ftype === "squashfs")?.size).toBe(8192);

    const grown = await run("add-version", dir, "--sign", join(keys, "signing.key.asc"));
    expect(grown.code).toBe(0);
    expect(grown.stdout).toContain("20250713");
  });

  it.each([
    [[], /missing subcommand/],
    [["frobnicate"], /unknown subcommand "frobnicate"/],
    [["create"], /give exactly one directory/],
    [["create", "a", "b"], /give exactly one directory/],
    [["create", "x", "--colour"], /Unknown option '--colour'/],
    [["create", "x", "--versions", "two"], /--versions: "two" is not a number/],
    [["create", "x", "--payload-size", "lots"], /--payload-size: "lots" is not a size/],
    [["create", "x", "--releases", "warty"], /unknown Ubuntu release warty/],
    [
      ["create", "x", "--sign", "/nonexistent/key.asc"],
      /--sign: cannot read \/nonexistent\/key\.asc \(ENOENT\)/,
    ],
  ])("exits 2 with a message for %j", async (argv, message) => {
    const { code, stderr, stdout } = await run(...argv);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr).toContain("usage:");
    expect(stdout).toBe("");
  });

  it("refuses a signing key that is not a private key", async () => {
    const keys = join(root, "keys");
    const { code, stderr } = await run("create", join(root, "x"), "--sign", join(keys, "signing.pub.asc"));
    expect(code).toBe(2);
    expect(stderr).toMatch(/the signing key is not an armored OpenPGP private key/);
  });

  it("prints its usage for help", async () => {
    const { code, stdout } = await run("help");
    expect(code).toBe(0);
    for (const sub of ["sync SOURCE_URL DIR", "create DIR", "add-version DIR", "keygen DIR"])
      expect(stdout).toContain(`bootstream mirror ${sub}`);
  });
});

describe("parseSize", () => {
  it("reads bytes with binary and decimal units", () => {
    expect(parseSize("65536")).toBe(65536);
    expect(parseSize("64KiB")).toBe(65536);
    expect(parseSize("64k")).toBe(65536);
    expect(parseSize("256MiB")).toBe(268435456);
    expect(parseSize("1.5G")).toBe(1610612736);
    expect(parseSize("2MB")).toBe(2000000);
    expect(parseSize("-1")).toBeNull();
    expect(parseSize("12 parsecs")).toBeNull();
  });
});
