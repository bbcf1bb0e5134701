import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { promisify } from "node:util";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { generateSigningKey } from "../../apps/server/src/mirror/signing";
import {
  BIN,
  TEST_ADMIN_TOKEN,
  TEST_RACK_SECRET,
  removeDir,
  startRegion,
  type RegionProcess,
} from "../helpers/region";
import { storeFiles } from "../helpers/store";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { connect, post } from "../helpers/sockets";
import { waitFor, watch } from "../helpers/watch";

const NOBLE = "ubuntu/noble/amd64";
const JAMMY = "ubuntu/jammy/amd64";
const USER = "mirror-user";
const PASSWORD = "pa55-w0rd-nobody-may-see";
const BASIC = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString("base64")}`;

/** A mirror behind HTTP Basic: 401 without the right header; jammy's payloads are refused (404). */
async function basicAuthGate(upstream: string) {
  const seen: { path: string; authorization: string | undefined }[] = [];
  const target = new URL(upstream);
  const server: Server = createServer((req, res) => {
    seen.push({ path: req.url ?? "", authorization: req.headers.authorization });
    if (req.headers.authorization !== BASIC) return void res.writeHead(401).end();
    if (/jammy/.test(req.url ?? "") && !(req.url ?? "").startsWith("/streams/"))
      return void res.writeHead(404).end();
    const forward = request(
      {
        host: target.hostname,
        port: target.port,
        path: req.url,
        method: req.method,
        headers: { range: req.headers.range ?? "" },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    forward.on("error", () => res.destroy());
    forward.end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/`,
    withCredentials: `http://${USER}:${PASSWORD}@127.0.0.1:${port}/`,
    seen,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const modeOf = async (file: string) => (await stat(file)).mode & 0o777;

describe("source credentials", () => {
  let mirror: TestMirror;
  let gate: Awaited<ReturnType<typeof basicAuthGate>>;
  let region: RegionProcess;
  let client: BootstreamClient;

  beforeAll(async () => {
    mirror = await startMirror({ releases: ["jammy", "noble"], arches: ["amd64"] });
    gate = await basicAuthGate(mirror.url);
    region = await startRegion();
    client = await watch(region.url, region.adminToken);
  });
  afterAll(async () => {
    client?.close();
    await region?.stop();
    await gate?.close();
    await mirror?.close();
    if (region) await removeDir(region.dataDir);
  });

  it("sends them as HTTP Basic to every request, and shows, audits and logs the URL without them", async () => {
    const { source } = await client.command("source:update", { url: gate.withCredentials });
    expect(source.url).toBe(gate.url);
    // The first read of a fresh region imports its default selection (noble); add jammy, which fails.
    await waitFor(
      client,
      (s) => s.images.get(NOBLE)?.state === "synced" && !s.import.running,
      30_000,
      "noble synced, import over",
    );
    const { selection } = await client.command("state:get", {}).then((r) => r.snapshot);
    await client.command("selection:save", {
      revision: selection.revision,
      items: [{ os: "ubuntu", release: "jammy", arches: ["amd64"] }, ...selection.items],
    });
    const state = await waitFor(
      client,
      // The payload's own failure (an import cut short says "the import ended before …" meanwhile).
      (s) =>
        s.images.get(JAMMY)?.state === "failed" && (s.images.get(JAMMY)?.error ?? "").includes("HTTP 404"),
      30_000,
      "jammy failed on its payload",
    );
    expect(state.images.get(JAMMY)!.error).toContain(`${gate.url}`);
    expect(state.images.get(JAMMY)!.error).toContain("HTTP 404");

    // The upstream saw the header on the index, the product files and the payloads alike.
    expect(gate.seen.some((r) => r.path.startsWith("/streams/v1/index"))).toBe(true);
    expect(gate.seen.some((r) => !r.path.startsWith("/streams/"))).toBe(true);
    expect(gate.seen.filter((r) => r.authorization !== BASIC)).toEqual([]);

    const { entries } = await client.command("audit:list", {});
    expect(entries.find((e) => e.action === "source:update")!.detail).toContain(gate.url);
    const shown = [
      JSON.stringify((await client.command("state:get", {})).snapshot),
      JSON.stringify(entries),
      region.output(),
    ];
    for (const text of shown) {
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain(BASIC.slice(6));
      expect(text).not.toContain(USER);
    }
  });

  it("keeps them across a restart, stored apart from the URL", async () => {
    await region.stop();
    region = await startRegion({ dataDir: region.dataDir });
    client.close();
    client = await watch(region.url, region.adminToken);
    const before = gate.seen.length;
    await client.command("import:start", {});
    await waitFor(
      client,
      (s) => s.import.running === false && s.import.finishedAt !== null,
      30_000,
      "import",
    );
    expect(gate.seen.length).toBeGreaterThan(before);
    expect(gate.seen.slice(before).filter((r) => r.authorization !== BASIC)).toEqual([]);
    expect(client.state.source.url).toBe(gate.url);
    expect(region.output()).not.toContain(PASSWORD);
  });

  it("are sent by `bootstream mirror sync` too, and not printed", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "bootstream-sync-basic-"));
    try {
      const before = gate.seen.length;
      const { stdout, stderr } = await promisify(execFile)(process.execPath, [
        BIN,
        "mirror",
        "sync",
        gate.withCredentials,
        dir,
        "release=noble",
        "--keyring",
        "none",
        "--json",
      ]);
      expect(await readFile(path.join(dir, "streams", "v1", "index.json"), "utf8")).toContain("index:1.0");
      const asked = gate.seen.slice(before);
      expect(asked.some((r) => !r.path.startsWith("/streams/"))).toBe(true);
      expect(asked.filter((r) => r.authorization !== BASIC)).toEqual([]);
      expect(stdout + stderr).not.toContain(PASSWORD);
    } finally {
      await removeDir(dir);
    }
  });

  it("refuses a wrong password with an error that quotes no credential, and keeps the old source", async () => {
    const wrong = gate.withCredentials.replace(PASSWORD, "not-the-password-either");
    await expect(client.command("source:update", { url: wrong })).rejects.toMatchObject({
      code: "source-error",
      message: expect.stringContaining("HTTP 401"),
    });
    const error = await client.command("source:update", { url: wrong }).catch((e: Error) => e.message);
    expect(error).not.toContain("not-the-password-either");
    expect(error).not.toContain(USER);
    expect(client.state.source.url).toBe(gate.url);
  });
});

describe("the data directory and first-start secrets", () => {
  let region: RegionProcess | null = null;
  afterAll(async () => {
    await region?.stop();
    if (region) await removeDir(region.dataDir);
  });

  it("creates DATA_DIR 0700 and the database 0600, and shows generated secrets only in a 0600 file", async () => {
    region = await startRegion({ env: { ADMIN_TOKEN: "", RACK_SECRET: "" } });
    const file = path.join(region.dataDir, "generated-secrets.txt");
    const text = await readFile(file, "utf8");
    const admin = /^Admin token \(shown once; keep it\): (\S+)$/m.exec(text)![1]!;
    const rack = /^Rack secret \([^)]*\): (\S+)$/m.exec(text)![1]!;
    // stdout is the JSON log stream: the secrets are not there, only where to find them.
    expect(region.output()).not.toContain(admin);
    expect(region.output()).not.toContain(rack);
    expect(region.output()).toContain("generated secrets were written to this file (mode 0600)");
    const { socket } = await connect(region.url, admin);
    socket.close();
    expect(await modeOf(file)).toBe(0o600);
    expect(await modeOf(region.dataDir)).toBe(0o700);
    expect(await modeOf(path.join(region.dataDir, "store"))).toBe(0o700);
    for (const name of ["bootstream.db", "bootstream.db-wal"])
      expect(await modeOf(path.join(region.dataDir, name))).toBe(0o600);
  });

  it("tightens a data dir and database left readable by others, and says so", async () => {
    const dataDir = region!.dataDir;
    await region!.stop();
    await chmod(dataDir, 0o755);
    await chmod(path.join(dataDir, "bootstream.db"), 0o644);
    region = await startRegion({ dataDir });
    expect(await modeOf(dataDir)).toBe(0o700);
    expect(await modeOf(path.join(dataDir, "bootstream.db"))).toBe(0o600);
    const warnings = region
      .output()
      .split("\n")
      .filter((l) => l.includes("permissions were wider"));
    expect(warnings.map((l) => (JSON.parse(l) as { path: string; was: string }).was).sort()).toEqual([
      "644",
      "755",
    ]);
  });

  it.each([
    ["ADMIN_TOKEN", "a"],
    ["RACK_SECRET", "test-rack-secret"],
  ])("refuses %s=%j (under 32 characters) with exit 2 and a clear line", async (name, value) => {
    await expect(startRegion({ env: { [name]: value } })).rejects.toThrow(
      new RegExp(
        `region exited with 2 before listening:\\n.*invalid ${name}: is ${value.length} characters; use at least 32`,
      ),
    );
  });
});

describe("a private key given as the keyring", () => {
  let region: RegionProcess;
  let client: BootstreamClient;
  let keys: { privateKey: string; publicKey: string };
  beforeAll(async () => {
    keys = await generateSigningKey();
    region = await startRegion();
    client = await watch(region.url, region.adminToken);
  });
  afterAll(async () => {
    client?.close();
    await region?.stop();
    await removeDir(region.dataDir);
  });

  it("is refused by source:update with a clear error, and nothing changes", async () => {
    const before = (await client.command("state:get", {})).snapshot.source;
    await expect(
      client.command("source:update", { url: "http://127.0.0.1:9/other/", keyring: keys.privateKey }),
    ).rejects.toMatchObject({
      code: "invalid",
      message: expect.stringContaining("holds a private (secret) key"),
    });
    expect((await client.command("state:get", {})).snapshot.source).toEqual(before);
    expect(region.output()).not.toContain(keys.privateKey.split("\n")[3]!);
  });

  it("is refused as BOOT_SOURCE_KEYRING: exit 2 before anything starts", async () => {
    const file = path.join(region.dataDir, "..", `private-${path.basename(region.dataDir)}.asc`);
    await writeFile(file, keys.privateKey, { mode: 0o600 });
    await expect(startRegion({ env: { BOOT_SOURCE_KEYRING: file } })).rejects.toThrow(
      /invalid BOOT_SOURCE_KEYRING: .*holds a private \(secret\) key/,
    );
  });
});

describe("/files and a store tampered with", () => {
  let mirror: TestMirror;
  let region: RegionProcess;
  let outside: string;
  const SECRET_BYTES = "not-a-boot-image: the region's neighbour's secret\n";

  /** GET /files/:sha as a rack; bounded, so a region stuck opening a FIFO fails here, not by hanging. */
  const pull = async (sha: string) => {
    const response = await fetch(`${region.url}/files/${sha}`, {
      headers: { authorization: `Bearer ${TEST_RACK_SECRET}` },
      signal: AbortSignal.timeout(20_000),
    });
    return { status: response.status, headers: response.headers, body: await response.text() };
  };

  beforeAll(async () => {
    mirror = await startMirror({ releases: ["noble"], arches: ["amd64"], versions: 1 });
    region = await startRegion({ env: { BOOT_SOURCE_URL: mirror.url } });
    const client = await watch(region.url, region.adminToken);
    try {
      await waitFor(client, (s) => s.images.get(NOBLE)?.state === "synced", 30_000, "noble synced");
    } finally {
      client.close();
    }
    outside = path.join(region.dataDir, "..", `outside-${path.basename(region.dataDir)}.txt`);
    await writeFile(outside, SECRET_BYTES, { mode: 0o644 });
  });
  afterAll(async () => {
    await region?.stop();
    await mirror?.close();
    if (outside) await rm(outside, { force: true });
    if (region) await removeDir(region.dataDir);
  });

  it("serves a held file, and refuses a symlink, a FIFO or a directory put in its place", async () => {
    const held = [...(await storeFiles(region.dataDir))];
    expect(held.length).toBeGreaterThanOrEqual(3);
    const [[linked, linkedPath], [fifo, fifoPath], [dir, dirPath]] = held as [
      [string, string],
      [string, string],
      [string, string],
    ];

    const served = await pull(linked);
    expect(served.status).toBe(200);
    expect(served.headers.get("content-security-policy")).toBe("default-src 'self'; frame-ancestors 'none'");
    expect(served.headers.get("x-content-type-options")).toBe("nosniff");

    // Each held file replaced by what an attacker with write access to the store might plant.
    await rm(linkedPath);
    await symlink(outside, linkedPath);
    await rm(fifoPath);
    await promisify(execFile)("mkfifo", ["-m", "600", fifoPath]);
    await rm(dirPath);
    await mkdir(dirPath);

    for (const sha of [linked, fifo, dir]) {
      const answer = await pull(sha);
      expect(answer.status, sha).toBe(404);
      expect(JSON.parse(answer.body)).toMatchObject({ ok: false, error: { code: "not-found" } });
      expect(answer.body).not.toContain("neighbour");
    }
    // Nothing was left blocked on the FIFO: the region answers, and serves the files left alone.
    expect((await fetch(`${region.url}/healthz`)).status).toBe(200);
    for (const [sha] of held.slice(3)) expect((await pull(sha)).status).toBe(200);
    // And the FIFO again, many times over: a blocked open would take a threadpool thread each time.
    const again = await Promise.all(Array.from({ length: 8 }, () => pull(fifo)));
    expect(again.map((a) => a.status)).toEqual(Array(8).fill(404));
  });
});

describe("configured secrets at rest", () => {
  let region: RegionProcess | null = null;
  afterAll(async () => {
    await region?.stop();
    if (region) await removeDir(region.dataDir);
  });

  /** The token hashes and the rack secret's hash as the database holds them. */
  const stored = (dataDir: string) => {
    const db = new Database(path.join(dataDir, "bootstream.db"), { readonly: true });
    try {
      const tokens = db.prepare("SELECT name, hash FROM token ORDER BY name").all() as {
        name: string;
        hash: string;
      }[];
      const rack = db.prepare("SELECT value FROM setting WHERE key = 'rackSecretHash'").get() as {
        value: string;
      };
      return { tokens: Object.fromEntries(tokens.map((t) => [t.name, t.hash])), rack: rack.value };
    } finally {
      db.close();
    }
  };
  const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
  const KDF = /^scrypt\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{32}$/;
  const works = async (url: string, admin: string) => {
    const state = await fetch(`${url}/api/v1/state`, { headers: { authorization: `Bearer ${admin}` } });
    const files = await fetch(`${url}/files/${"0".repeat(64)}`, {
      headers: { authorization: `Bearer ${TEST_RACK_SECRET}` },
    });
    return [state.status, files.status];
  };

  it("keeps ADMIN_TOKEN and RACK_SECRET as salted scrypt, generated tokens as SHA-256", async () => {
    region = await startRegion();
    const { json } = await post(region.url, region.adminToken, "token:create", { role: "viewer", name: "v" });
    const viewer = json.token as string;
    const at = stored(region.dataDir);
    expect(at.tokens.admin).toMatch(KDF);
    expect(at.rack).toMatch(KDF);
    expect(at.tokens.v).toBe(sha256(viewer));
    // Both still work: the admin's API request, and the rack secret on /files (404: no such file).
    expect(await works(region.url, region.adminToken)).toEqual([200, 404]);
  });

  it("moves secrets an older version stored as SHA-256 to scrypt on the next start", async () => {
    const dataDir = region!.dataDir;
    await region!.stop();
    region = null;
    const db = new Database(path.join(dataDir, "bootstream.db"));
    db.prepare("UPDATE token SET hash = ? WHERE name = 'admin'").run(sha256(TEST_ADMIN_TOKEN));
    db.prepare("UPDATE setting SET value = ? WHERE key = 'rackSecretHash'").run(sha256(TEST_RACK_SECRET));
    db.close();
    region = await startRegion({ dataDir });
    const at = stored(dataDir);
    expect(at.tokens.admin).toMatch(KDF);
    expect(at.rack).toMatch(KDF);
    expect(await works(region.url, region.adminToken)).toEqual([200, 404]);
  });

  it("still takes the first admin token after a start without ADMIN_TOKEN; a wrong one is refused", async () => {
    const dataDir = region!.dataDir;
    await region!.stop();
    region = null;
    const before = stored(dataDir).tokens.admin;
    region = await startRegion({ dataDir, env: { ADMIN_TOKEN: "" } });
    expect(await works(region.url, TEST_ADMIN_TOKEN)).toEqual([200, 404]);
    expect(await works(region.url, `${TEST_ADMIN_TOKEN}x`)).toEqual([401, 404]);
    expect(stored(dataDir).tokens.admin).toBe(before);
  });
});
