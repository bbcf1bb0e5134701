import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { newImageRecord, planApplied, versionSwitched, type ImagePlan } from "@bootstream/images";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Database } from "../database";
import { Repositories } from ".";

// The repositories on a real SQLite file in a temp dir, through Database.write's transactions.
let dir: string;
let db: Database;
let data: Repositories;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "bootstream-repos-"));
  db = await Database.open({ dataDir: dir, databaseUrl: null });
  data = new Repositories(db);
});
afterEach(async () => {
  await db.close();
  await rm(dir, { recursive: true, force: true });
});

const token = (name: string, role: "admin" | "viewer" | "rack", hash: string) => ({
  name,
  role,
  hash: hash.padEnd(64, "0"),
  createdAt: "2026-12-02T00:00:00.000Z",
  revokedAt: null,
});

describe("TokenRepository", () => {
  it("takes a free name once, reuses a revoked one, and never takes an active one", async () => {
    expect(data.kind).toBe("sqlite");
    expect(await data.write((tx) => tx.tokens.create(token("ops", "viewer", "a")))).toBe(true);
    expect(await data.write((tx) => tx.tokens.create(token("ops", "viewer", "b")))).toBe(false);
    expect((await data.read.tokens.byName("ops"))?.hash).toBe("a".padEnd(64, "0"));
    expect(await data.write((tx) => tx.tokens.insertIfAbsent(token("ops", "admin", "c")))).toBe(false);
    expect(await data.write((tx) => tx.tokens.create(token("boss", "admin", "d")))).toBe(true);
    expect(await data.write((tx) => tx.tokens.revoke("ops", "2026-12-02T01:00:00.000Z"))).toBe("revoked");
    expect(await data.write((tx) => tx.tokens.revoke("ops", "2026-12-02T01:00:00.000Z"))).toBe("not-found");
    expect(await data.write((tx) => tx.tokens.revoke("nobody", "2026-12-02T01:00:00.000Z"))).toBe(
      "not-found",
    );
    // Revoked: the name can be had again, with a new hash.
    expect(await data.write((tx) => tx.tokens.create(token("ops", "viewer", "e")))).toBe(true);
    expect(await data.read.tokens.byHash("e".padEnd(64, "0"))).toMatchObject({
      name: "ops",
      revokedAt: null,
    });
    expect(await data.read.tokens.byHash("a".padEnd(64, "0"))).toBeNull();
    expect(await data.read.tokens.count()).toBe(2);
  });

  it("never revokes the last active admin token", async () => {
    await data.write(async (tx) => {
      await tx.tokens.put(token("first", "admin", "1"));
      await tx.tokens.put(token("second", "admin", "2"));
    });
    expect(await data.write((tx) => tx.tokens.revoke("first", "t"))).toBe("revoked");
    expect(await data.write((tx) => tx.tokens.revoke("second", "t"))).toBe("last-admin");
    expect((await data.read.tokens.byName("second"))?.revokedAt).toBeNull();
  });

  it("puts (makes or replaces) a named token, and removes one only while it has the hash given", async () => {
    await data.write((tx) => tx.tokens.put(token("demo", "admin", "1")));
    await data.write((tx) => tx.tokens.put(token("demo", "admin", "2")));
    expect((await data.read.tokens.byName("demo"))?.hash).toBe("2".padEnd(64, "0"));
    await data.write((tx) => tx.tokens.removeIf("demo", "1".padEnd(64, "0")));
    expect(await data.read.tokens.byName("demo")).not.toBeNull();
    await data.write((tx) => tx.tokens.removeIf("demo", "2".padEnd(64, "0")));
    expect(await data.read.tokens.byName("demo")).toBeNull();
  });
});

describe("SettingsRepository", () => {
  it("has defaults, writes only the fields given, and keeps internal keys apart", async () => {
    expect(await data.read.settings.get()).toEqual({
      autoImport: true,
      bandwidthLimit: null,
      importWindow: null,
    });
    const window = { start: "01:00", end: "05:00", timezone: "UTC" };
    expect(
      await data.write((tx) =>
        tx.settings.update({ autoImport: false, bandwidthLimit: 2_000_000, importWindow: window }),
      ),
    ).toEqual({ autoImport: false, bandwidthLimit: 2_000_000, importWindow: window });
    expect(await data.write((tx) => tx.settings.update({ bandwidthLimit: null }))).toEqual({
      autoImport: false,
      bandwidthLimit: null,
      importWindow: window,
    });
    expect((await data.write((tx) => tx.settings.update({ importWindow: null }))).importWindow).toBeNull();

    expect(await data.read.settings.getInternal("rack.secret")).toBeNull();
    expect(await data.write((tx) => tx.settings.setOnce("rack.secret", "first"))).toBe("first");
    expect(await data.write((tx) => tx.settings.setOnce("rack.secret", "second"))).toBe("first");
    await data.write((tx) => tx.settings.removeIf("rack.secret", "second"));
    expect(await data.read.settings.getInternal("rack.secret")).toBe("first");
    await data.write((tx) => tx.settings.removeIf("rack.secret", "first"));
    expect(await data.read.settings.getInternal("rack.secret")).toBeNull();
    await data.write((tx) => tx.settings.set("k", "v"));
    await data.write((tx) => tx.settings.remove("k"));
    expect(await data.read.settings.getInternal("k")).toBeNull();
    expect(Object.keys(await data.read.settings.get())).toEqual([
      "autoImport",
      "bandwidthLimit",
      "importWindow",
    ]);
  });
});

describe("SourceRepository", () => {
  const fields = { url: "http://a.example/", keyring: null, lastFetch: null, error: null, catalogue: null };
  const row = { id: 1, ...fields };

  it("keeps the first source stored, with its credentials, and replaces both on an update", async () => {
    await data.write((tx) => tx.source.ensure(row, { username: "u", password: "p" }));
    await data.write((tx) =>
      tx.source.ensure({ ...row, url: "http://b.example/" }, { username: "x", password: "y" }),
    );
    expect((await data.read.source.get())?.url).toBe("http://a.example/");
    expect(await data.read.source.credentials()).toEqual({ username: "u", password: "p" });

    await data.write((tx) => tx.source.replace({ ...fields, url: "http://c.example/" }, null));
    expect((await data.read.source.get())?.url).toBe("http://c.example/");
    expect(await data.read.source.credentials()).toBeNull();
    await data.write((tx) =>
      tx.source.replace({ ...fields, url: "http://d.example/" }, { username: "n", password: "m" }),
    );
    expect(await data.read.source.credentials()).toEqual({ username: "n", password: "m" });
  });

  it("records a read only while the source read is still the stored one", async () => {
    await data.write((tx) => tx.source.ensure(row, null));
    expect(
      await data.write((tx) => tx.source.recordRead("http://a.example/", { lastFetch: "t1", error: null })),
    ).toBe(true);
    expect(await data.write((tx) => tx.source.recordRead("http://old.example/", { error: "stale" }))).toBe(
      false,
    );
    expect(await data.read.source.get()).toMatchObject({ lastFetch: "t1", error: null });
  });

  it("moves credentials out of an old URL, and ignores credentials that are not a user and password", async () => {
    await data.write((tx) => tx.source.ensure({ ...row, url: "http://u:p@a.example/" }, null));
    await data.write((tx) =>
      tx.source.separateCredentials("http://u:p@a.example/", "http://a.example/", {
        username: "u",
        password: "p",
      }),
    );
    expect((await data.read.source.get())?.url).toBe("http://a.example/");
    expect(await data.read.source.credentials()).toEqual({ username: "u", password: "p" });
    await data.write((tx) => tx.settings.set("source.credentials", JSON.stringify({ username: 1 })));
    expect(await data.read.source.credentials()).toBeNull();
  });
});

describe("AuditRepository", () => {
  it("lists newest first in pages, and cuts a long detail", async () => {
    for (let i = 0; i < 5; i++)
      await data.write((tx) => tx.audit.record({ by: "admin", action: "test", detail: `entry ${i}` }));
    const long = await data.write((tx) =>
      tx.audit.record({ by: "admin", action: "test", detail: "x".repeat(3000) }),
    );
    expect(long.detail).toHaveLength(2000);
    const first = await data.read.audit.list(4);
    expect(first.entries.map((e) => e.detail.slice(0, 7))).toEqual([
      "xxxxxxx",
      "entry 4",
      "entry 3",
      "entry 2",
    ]);
    expect(first.next).not.toBeNull();
    const second = await data.read.audit.list(4, first.next!);
    expect(second.entries.map((e) => e.detail)).toEqual(["entry 1", "entry 0"]);
    expect(second.next).toBeNull();
  });
});

describe("ImportRunRepository", () => {
  it("starts, finishes, and interrupts only the runs still unfinished", async () => {
    const a = await data.write((tx) => tx.runs.start("schedule", "t0"));
    const b = await data.write((tx) => tx.runs.start("manual", "t1"));
    expect(b).toBeGreaterThan(a);
    expect((await data.read.runs.unfinished()).map((r) => r.id)).toEqual([a, b]);
    await data.write((tx) => tx.runs.finish(a, "t2", null));
    await data.write((tx) => tx.runs.interrupt([a, b], "t3", "interrupted"));
    expect(await data.read.runs.unfinished()).toEqual([]);
    expect((await data.read.runs.all()).map((r) => [r.trigger, r.finishedAt, r.error])).toEqual([
      ["schedule", "t2", null],
      ["manual", "t3", "interrupted"],
    ]);
  });
});

describe("SelectionRepository", () => {
  it("starts at revision 0 once, and saves only on the revision it was based on", async () => {
    await data.write((tx) => tx.selection.ensure());
    await data.write((tx) => tx.selection.ensure());
    expect(await data.read.selection.get()).toEqual({ revision: 0, items: [], updatedBy: "system" });
    const items = [{ os: "ubuntu", release: "noble", arches: ["amd64"] }];
    expect(await data.write((tx) => tx.selection.saveIf(0, items, "admin"))).toBe(true);
    expect(await data.write((tx) => tx.selection.saveIf(0, [], "other"))).toBe(false);
    expect(await data.read.selection.get()).toEqual({ revision: 1, items, updatedBy: "admin" });
  });
});

describe("ImageRepository", () => {
  const NOBLE = "ubuntu/noble/amd64";
  const parts = { os: "ubuntu", release: "noble", arch: "amd64", title: "Ubuntu 24.04" };
  const file = (c: string, p: string) => ({ sha256: c.repeat(64), size: 10, ftype: "squashfs", path: p });
  const plan = (version: string, files: ReturnType<typeof file>[]): ImagePlan => ({
    id: NOBLE,
    ...parts,
    version,
    files,
    missing: files,
    bytesTotal: 20,
    bytesStored: 0,
  });
  const planned = (p: ImagePlan) => ({ version: p.version, title: p.title, bytesTotal: 20, bytesStored: 0 });

  it("records a plan's file list, switches only a whole version, and drops the old version's files", async () => {
    await data.write((tx) => tx.images.insert([newImageRecord(NOBLE, parts, "t0")]));
    const v1 = plan("1", [file("a", "v1/kernel"), file("b", "v1/squashfs")]);
    const row = (await data.read.images.all())[0]!;
    const applied = await data.write((tx) =>
      tx.images.applyPlan([v1], [planApplied(row, planned(v1), "t1")!]),
    );
    expect(applied.map((r) => r.targetVersion)).toEqual(["1"]);
    expect((await data.read.images.files()).map((f) => f.path).sort()).toEqual(["v1/kernel", "v1/squashfs"]);
    // A plan whose file list is not the one recorded does not switch.
    const short = { ...v1, files: [file("a", "v1/kernel")] };
    expect(
      await data.write((tx) => tx.images.switchVersion(short, (r) => versionSwitched(r, planned(v1), "t2"))),
    ).toBeNull();
    // A transition that changes nothing writes nothing.
    expect(await data.write((tx) => tx.images.switchVersion(v1, () => null))).toBeNull();
    const switched = await data.write((tx) =>
      tx.images.switchVersion(v1, (r) => versionSwitched(r, planned(v1), "t2")),
    );
    expect(switched).toMatchObject({ version: "1", state: "synced" });

    // Version 2 shares a sha256 with 1 (two paths); once switched, only 2's rows remain.
    const v2 = plan("2", [file("a", "v2/kernel"), file("c", "v2/squashfs")]);
    const held = (await data.read.images.all())[0]!;
    await data.write((tx) => tx.images.applyPlan([v2], [planApplied(held, planned(v2), "t3")!]));
    expect(await data.read.images.neededFiles()).toEqual(new Set(["a", "b", "c"].map((c) => c.repeat(64))));
    await data.write((tx) => tx.images.switchVersion(v2, (r) => versionSwitched(r, planned(v2), "t4")));
    expect((await data.read.images.files()).map((f) => f.path).sort()).toEqual(["v2/kernel", "v2/squashfs"]);
    expect(await data.read.images.neededFiles()).toEqual(new Set(["a", "c"].map((c) => c.repeat(64))));
    // A plan for a version neither held nor targeted does not switch.
    expect(
      await data.write((tx) =>
        tx.images.switchVersion(plan("9", []), (r) => versionSwitched(r, planned(v1), "t5")),
      ),
    ).toBeNull();
  });

  it("gives a deselected image no file rows and never brings it back", async () => {
    await data.write((tx) => tx.images.insert([newImageRecord(NOBLE, parts, "t0")]));
    const row = (await data.read.images.all())[0]!;
    await data.write((tx) => tx.images.delete([NOBLE]));
    const v1 = plan("1", [file("a", "v1/kernel")]);
    expect(
      await data.write((tx) => tx.images.applyPlan([v1], [planApplied(row, planned(v1), "t1")!])),
    ).toEqual([]);
    expect(await data.read.images.files()).toEqual([]);
    expect(await data.read.images.all()).toEqual([]);
    expect(
      await data.write((tx) => tx.images.switchVersion(v1, (r) => versionSwitched(r, planned(v1), "t2"))),
    ).toBeNull();
    expect(await data.write((tx) => tx.images.updateExisting([row]))).toEqual([]);
    await data.write((tx) => tx.images.insert([]));
    expect(await data.read.images.all()).toEqual([]);
  });
});
