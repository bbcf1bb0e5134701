import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BootstreamClient } from "@bootstream/protocol/client";
import type { AuditEntry, SelectionItem } from "@bootstream/protocol";
import { BIN, removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { connect, post, send, sendRaw, type TestSocket } from "../helpers/sockets";
import { waitFor, watch } from "../helpers/watch";

function cli(
  region: RegionProcess,
  args: string[],
  token = region.adminToken,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, BOOTSTREAM_URL: region.url, BOOTSTREAM_TOKEN: token },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("realtime protocol", () => {
  let mirror: TestMirror;
  let region: RegionProcess;
  let admin: BootstreamClient;
  let viewerToken: string;

  /** The whole audit log, page by page (a page holds at most 100). */
  async function allAudit() {
    const entries: AuditEntry[] = [];
    let before: string | null | undefined;
    do {
      const page = await admin.command("audit:list", before ? { before } : {});
      entries.push(...page.entries);
      before = page.next;
    } while (before);
    return entries;
  }

  /** Everything a refused command must leave alone. */
  async function observable() {
    const { snapshot } = await admin.command("state:get", {});
    const entries = await allAudit();
    // lastFetch moves whenever an import reads the source; everything else must stay put.
    const { lastFetch: _lastFetch, ...source } = snapshot.source;
    return {
      selection: snapshot.selection,
      settings: snapshot.settings,
      source,
      images: snapshot.images.map((i) => i.id),
      audit: entries.length,
    };
  }

  beforeAll(async () => {
    mirror = await startMirror({ releases: ["jammy", "noble"], arches: ["amd64", "arm64"] });
    // 1,000 commands at once on one token: the per-token and per-address limits (abuse.test.ts)
    // would answer most of them rate-limited; here each connection's own limit is what is tested.
    region = await startRegion({
      env: { BOOT_SOURCE_URL: mirror.url, RATE_LIMIT_TOKEN: "1000", RATE_LIMIT_ADDRESS: "1000" },
    });
    admin = await watch(region.url, region.adminToken);
    await waitFor(
      admin,
      (s) => s.images.get("ubuntu/noble/amd64")?.state === "synced" && !s.import.running,
      30_000,
      "default import",
    );
    viewerToken = (await admin.command("token:create", { role: "viewer", name: "wall" })).token;
  });
  afterAll(async () => {
    admin?.close();
    await region?.stop();
    await mirror?.close();
    await removeDir(region.dataDir);
  });

  it("refuses every mutating command from a viewer with forbidden, and changes nothing", async () => {
    const before = await observable();
    const { socket, snapshot } = await connect(region.url, viewerToken);
    expect(snapshot.you.role).toBe("viewer");
    const attempts: [string, unknown][] = [
      ["selection:save", { revision: before.selection.revision, items: [] }],
      ["settings:update", { autoImport: false }],
      ["import:start", {}],
      ["import:stop", {}],
      ["source:update", { url: mirror.url }],
      ["rack:remove", { name: "rack-1" }],
      ["token:create", { role: "admin", name: "sneaky" }],
      ["token:revoke", { name: "admin" }],
    ];
    for (const [name, payload] of attempts) {
      const answer = (await sendRaw(socket, name, payload)) as {
        ok: boolean;
        error: { code: string; message: string };
      };
      expect(answer, name).toMatchObject({ ok: false, error: { code: "forbidden" } });
      expect(answer.error.message).toContain("admin");
      const http = await post(region.url, viewerToken, name, payload);
      expect(http.status, name).toBe(403);
    }
    // What a viewer may do still works.
    expect(await send(socket, "state:get", {})).toMatchObject({ ok: true });
    expect(await send(socket, "catalogue:get", {})).toMatchObject({ ok: true });
    socket.close();
    expect(await observable()).toEqual(before);
  });

  it("keeps 20 admins saving 25 times each at once consistent", async () => {
    const names = Array.from({ length: 20 }, (_, i) => `admin-${i + 1}`);
    const tokens = await Promise.all(
      names.map(async (name) => (await admin.command("token:create", { role: "admin", name })).token),
    );
    const clients = await Promise.all(tokens.map((token) => watch(region.url, token)));
    const before = await observable();
    const choices: SelectionItem[][] = [
      [{ os: "ubuntu", release: "noble", arches: ["amd64"] }],
      [{ os: "ubuntu", release: "noble", arches: ["amd64", "arm64"] }],
      [
        { os: "ubuntu", release: "jammy", arches: ["amd64"] },
        { os: "ubuntu", release: "noble", arches: ["amd64"] },
      ],
    ];
    const accepted: { revision: number; by: string; items: SelectionItem[] }[] = [];
    let conflicts = 0;
    await Promise.all(
      clients.map(async (client, c) => {
        for (let i = 0; i < 25; i++) {
          const items = choices[(c + i) % choices.length]!;
          // Half the saves use the revision this client last heard of (often stale), half a deliberately old one.
          const revision =
            i % 2 === 0 ? client.state.selection.revision : Math.max(0, client.state.selection.revision - 1);
          try {
            const { selection } = await client.command("selection:save", { revision, items });
            accepted.push({ revision: selection.revision, by: names[c]!, items: selection.items });
          } catch (error) {
            expect(error).toMatchObject({ code: "conflict" });
            conflicts++;
          }
        }
      }),
    );
    expect(accepted.length + conflicts).toBe(500);
    expect(accepted.length).toBeGreaterThan(0);
    expect(conflicts).toBeGreaterThan(0);
    const revisions = accepted.map((a) => a.revision).sort((a, b) => a - b);
    expect(new Set(revisions).size).toBe(revisions.length);
    // Accepted saves form one unbroken chain of revisions from where we started.
    expect(revisions).toEqual(
      Array.from({ length: revisions.length }, (_, i) => before.selection.revision + 1 + i),
    );
    const last = accepted.find((a) => a.revision === revisions.at(-1))!;
    const after = await observable();
    expect(after.selection).toEqual({ revision: last.revision, items: last.items });
    const entries = await allAudit();
    const saves = entries.filter((e) => e.action === "selection:save" && e.by.startsWith("admin-"));
    expect(saves).toHaveLength(accepted.length);
    for (const a of accepted)
      expect(saves.some((e) => e.by === a.by && e.detail.startsWith(`revision ${a.revision}:`))).toBe(true);
    expect(after.settings).toEqual(before.settings);
    expect(after.source).toEqual(before.source);
    for (const client of clients) client.close();
    await waitFor(admin, (s) => !s.import.running, 30_000, "imports to settle");
  });

  it("answers 1,000 malformed payloads with invalid, stays up, and changes nothing", async () => {
    const before = await observable();
    const deep: Record<string, unknown> = {};
    let cursor = deep;
    for (let i = 0; i < 500; i++) cursor = (cursor.a = {}) as Record<string, unknown>;
    const proto = JSON.parse('{"__proto__": {"admin": true}, "autoImport": true}') as unknown;
    const cases: [string, unknown][] = [
      ["selection:save", { revision: "1", items: [] }],
      ["selection:save", { revision: 1, items: "all" }],
      ["selection:save", { revision: -1, items: [] }],
      ["selection:save", { revision: 1.5, items: [] }],
      [
        "selection:save",
        {
          revision: 1,
          items: Array.from({ length: 600 }, () => ({ os: "ubuntu", release: "noble", arches: ["amd64"] })),
        },
      ],
      [
        "selection:save",
        {
          revision: 1,
          items: [{ os: "ubuntu", release: "noble", arches: Array.from({ length: 100 }, () => "amd64") }],
        },
      ],
      [
        "selection:save",
        { revision: 1, items: [{ os: "x".repeat(10_000), release: "noble", arches: ["amd64"] }] },
      ],
      ["selection:save", { revision: 1, items: [{ os: "../etc", release: "noble", arches: ["amd64"] }] }],
      ["selection:save", { revision: 1, items: [], extra: true }],
      ["selection:save", deep],
      ["selection:save", null],
      ["selection:save", [1, 2, 3]],
      ["selection:save", "revision=1"],
      ["selection:save", Buffer.from("binary payload")],
      ["settings:update", { autoImport: "yes" }],
      ["settings:update", proto],
      ["settings:update", {}],
      ["settings:update", 42],
      ["source:update", { url: 7 }],
      ["source:update", { url: "x".repeat(5000) }],
      ["source:update", { url: "http://example.invalid/", keyring: { armored: true } }],
      ["token:create", { role: "root", name: "x" }],
      ["token:create", { role: "viewer", name: "" }],
      ["token:create", { role: "viewer", name: "<script>" }],
      ["token:revoke", { name: ["admin"] }],
      ["rack:remove", {}],
      ["import:start", { now: true }],
      ["import:stop", { force: 1 }],
      ["audit:list", { limit: 1e9 }],
      ["audit:list", { limit: "10" }],
    ];
    const sockets: TestSocket[] = [];
    for (let i = 0; i < 25; i++) sockets.push((await connect(region.url, region.adminToken)).socket);
    const answers = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => {
        const [name, payload] = cases[i % cases.length]!;
        return sendRaw(sockets[i % sockets.length]!, name, payload) as Promise<{
          ok: boolean;
          error?: { code: string };
        }>;
      }),
    );
    const codes = new Map<string, number>();
    for (const answer of answers)
      codes.set(answer.error?.code ?? "ok", (codes.get(answer.error?.code ?? "ok") ?? 0) + 1);
    expect(Object.fromEntries(codes)).toEqual({ invalid: 1000 });

    // Commands without an ack: an error event, never a crash.
    const errors: string[] = [];
    sockets[0]!.on("command:error", ({ error }) => errors.push(error.code));
    const rawEmit = sockets[0]!.emit.bind(sockets[0]) as unknown as (
      event: string,
      ...args: unknown[]
    ) => void;
    for (let i = 0; i < 5; i++) rawEmit("settings:update", { autoImport: false });
    for (let i = 0; i < 50 && errors.length < 5; i++)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(errors).toEqual(Array(5).fill("invalid"));

    expect((await fetch(`${region.url}/healthz`)).status).toBe(200);
    expect(await observable()).toEqual(before);
    for (const socket of sockets) socket.close();
  });

  it("cuts a connection whose message is over the size limit, and nobody else notices", async () => {
    const { socket } = await connect(region.url, region.adminToken);
    const closed = new Promise<string>((resolve) => socket.once("disconnect", resolve));
    const rawEmit = socket.emit.bind(socket) as unknown as (event: string, ...args: unknown[]) => void;
    rawEmit("source:update", { url: "http://x/", keyring: "k".repeat(2_000_000) }, () => undefined);
    expect(await closed).toBe("transport close");
    expect((await admin.command("state:get", {})).snapshot.you.name).toBe("admin");
  });

  it("rate-limits a socket that floods, without slowing anyone else", async () => {
    const { socket } = await connect(region.url, region.adminToken);
    const answers = (await Promise.all(
      Array.from({ length: 200 }, () => sendRaw(socket, "state:get", {})),
    )) as { ok: boolean; error?: { code: string } }[];
    const limited = answers.filter((a) => a.error?.code === "rate-limited").length;
    expect(limited).toBeGreaterThan(100);
    expect(answers.filter((a) => a.ok).length).toBeGreaterThanOrEqual(40);
    // Another client is not limited by this socket's flood.
    await expect(admin.command("state:get", {})).resolves.toHaveProperty("snapshot");
    socket.close();
  });

  it("lists who is connected in presence events", async () => {
    const { socket } = await connect(region.url, viewerToken);
    const state = await waitFor(
      admin,
      (s) => s.users.some((u) => u.name === "wall"),
      5_000,
      "presence of the viewer",
    );
    expect(state.users).toContainEqual({ name: "wall", role: "viewer" });
    socket.close();
    await waitFor(admin, (s) => !s.users.some((u) => u.name === "wall"), 5_000, "viewer gone from presence");
  });

  it("brings a client that lost its connection back to exactly the server's state", async () => {
    const watcher = await watch(region.url, viewerToken);
    const flow = (async () => {
      for (let i = 0; i < 10; i++) {
        await admin.command("settings:update", { autoImport: i % 2 === 0 });
        await new Promise((resolve) => setTimeout(resolve, 30));
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 60));
    // Drop the transport under it, as a flaky network would; socket.io reconnects on its own.
    watcher.socket!.io.engine.close();
    await flow;
    await waitFor(
      watcher,
      (s) => watcher.status === "connected" && s.settings.autoImport === false,
      10_000,
      "reconnected",
    );
    const { snapshot } = await admin.command("state:get", {});
    expect(watcher.state.settings).toEqual(snapshot.settings);
    expect(watcher.state.selection).toEqual(snapshot.selection);
    expect([...watcher.state.images.values()].sort((a, b) => a.id.localeCompare(b.id))).toEqual(
      snapshot.images,
    );
    watcher.close();
  });

  describe("the CLI", () => {
    it("prints status as a table and as JSON", async () => {
      const table = await cli(region, ["status"]);
      expect(table.code).toBe(0);
      expect(table.stdout).toMatch(/ubuntu\/noble\/amd64 .* (Synced|Queued for download|Downloading)/);
      const json = await cli(region, ["status", "--json"]);
      expect(json.code).toBe(0);
      const snapshot = JSON.parse(json.stdout) as { you: { name: string }; images: unknown[] };
      expect(snapshot.you.name).toBe("admin");
    });

    it("follows the region live with status --watch", async () => {
      const child = spawn(process.execPath, [BIN, "status", "--watch", "--json"], {
        env: { ...process.env, BOOTSTREAM_URL: region.url, BOOTSTREAM_TOKEN: region.adminToken },
      });
      let out = "";
      const complete = () => out.split("\n").slice(0, -1).filter(Boolean);
      // Waits for the n-th complete line: an event (stdout data), not a poll with a deadline.
      const lines = (n: number) =>
        new Promise<{ seq: number; images: { id: string }[] }[]>((resolve, reject) => {
          const check = () => {
            if (complete().length < n) return;
            child.stdout.off("data", check);
            child.off("exit", early);
            resolve(complete().map((l) => JSON.parse(l) as { seq: number; images: { id: string }[] }));
          };
          const early = (code: number | null) =>
            reject(new Error(`status --watch exited (${code}) before line ${n}: ${out}`));
          child.stdout.on("data", check);
          child.once("exit", early);
          check();
        });
      child.stdout.on("data", (d: Buffer) => (out += d.toString()));
      const [first] = await lines(1);
      expect(first!.images.map((i) => i.id)).toContain("ubuntu/noble/amd64");
      await admin.command("settings:update", { autoImport: !admin.state.settings.autoImport });
      const after = await lines(2);
      expect(after.at(-1)!.seq).toBeGreaterThan(first!.seq);
      child.kill("SIGINT");
      expect(await new Promise((resolve) => child.on("exit", resolve))).toBe(0);
    });

    it("selects and deselects by editing the current selection", async () => {
      await cli(region, ["select", "ubuntu/jammy", "--arch", "amd64"]);
      let { snapshot } = await admin.command("state:get", {});
      expect(snapshot.selection.items).toContainEqual({ os: "ubuntu", release: "jammy", arches: ["amd64"] });
      const before = snapshot.selection.items.filter((i) => i.release !== "jammy");
      const result = await cli(region, ["deselect", "ubuntu/jammy"]);
      expect(result.code).toBe(0);
      ({ snapshot } = await admin.command("state:get", {}));
      expect(snapshot.selection.items).toEqual(before);
    });

    it("runs two selects at once without either undoing the other", async () => {
      const [a, b] = await Promise.all([
        cli(region, ["select", "ubuntu/jammy", "--arch", "amd64"]),
        cli(region, ["select", "ubuntu/noble", "--arch", "arm64"]),
      ]);
      expect([a.code, b.code]).toEqual([0, 0]);
      const { snapshot } = await admin.command("state:get", {});
      expect(snapshot.selection.items).toContainEqual({ os: "ubuntu", release: "jammy", arches: ["amd64"] });
      expect(snapshot.selection.items.find((i) => i.release === "noble")?.arches).toContain("arm64");
    });

    it("exits 1 on a refusal, 2 on a usage error", async () => {
      const refused = await cli(region, ["auto-import", "off"], viewerToken);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain("forbidden");
      expect((await cli(region, ["auto-import", "maybe"])).code).toBe(2);
      expect((await cli(region, ["select", "noble"])).code).toBe(2);
      expect((await cli(region, ["select", "ubuntu/focal"])).code).toBe(1);
      const on = await cli(region, ["auto-import", "on"]);
      expect(on).toMatchObject({ code: 0, stdout: "auto-import on\n" });
    });
  });
});
