import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { waitFor, watch } from "../helpers/watch";

// `bootstream status --watch` into a pipe (a log file, `| grep`): the current lines once, then a
// line per change, never the whole table again.

describe("status --watch without a terminal", () => {
  let mirror: TestMirror;
  let region: RegionProcess;

  beforeAll(async () => {
    mirror = await startMirror({ releases: ["jammy", "noble"], arches: ["amd64"], versions: 1 });
    region = await startRegion({ env: { BOOT_SOURCE_URL: mirror.url } });
    const client = await watch(region.url, region.adminToken);
    try {
      await waitFor(
        client,
        (s) => !s.import.running && s.images.get("ubuntu/noble/amd64")?.state === "synced",
        30_000,
        "the first import",
      );
    } finally {
      client.close();
    }
  });
  afterAll(async () => {
    await region?.stop();
    await mirror?.close();
    if (region) await removeDir(region.dataDir);
  });

  it("prints each line once, then only what changed", async () => {
    const child = spawn(
      process.execPath,
      [BIN, "status", "--watch", "--url", region.url, "--token", region.adminToken],
      {
        env: { ...process.env, BOOTSTREAM_URL: "", BOOTSTREAM_TOKEN: "" },
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
    const seen = (pattern: RegExp) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not seen: ${pattern}\n${out}`)), 30_000);
        const check = () => {
          if (!pattern.test(out)) return;
          clearTimeout(timer);
          child.stdout.off("data", check);
          resolve();
        };
        child.stdout.on("data", check);
        check();
      });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      await seen(/^ubuntu\/noble\/amd64 .* Synced$/m);
      const client = await watch(region.url, region.adminToken);
      try {
        await client.command("selection:save", {
          revision: client.state.selection.revision,
          items: [
            { os: "ubuntu", release: "jammy", arches: ["amd64"] },
            { os: "ubuntu", release: "noble", arches: ["amd64"] },
          ],
        });
      } finally {
        client.close();
      }
      await seen(/^ubuntu\/jammy\/amd64 .* Synced$/m);
      await seen(/^Bootstream — connected — import idle/m);
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    const lines = out.trimEnd().split("\n");
    // No screen clearing, no blank separators, no table redrawn.
    expect(out).not.toContain("\x1b[");
    expect(lines.filter((l) => l === "")).toEqual([]);
    expect(lines.filter((l) => l.startsWith("ubuntu/noble/amd64 "))).toHaveLength(1);
    expect(lines.filter((l) => l.startsWith("Source: "))).toHaveLength(1);
    // As `status`: the cap and the window, once (they did not change).
    expect(lines.filter((l) => l.startsWith("Bandwidth: "))).toEqual(["Bandwidth: off   Window: any time"]);
    // jammy went through its states, a line each, in order.
    const jammy = lines.filter((l) => l.startsWith("ubuntu/jammy/amd64 "));
    expect(jammy.at(-1)).toMatch(/ Synced$/);
    // A line is printed when it changed: never twice in a row.
    expect(jammy.filter((l, i) => i > 0 && l === jammy[i - 1])).toEqual([]);
    // The header is printed again only when it changed (the import ran; coalesced, it may not show).
    const headers = lines.filter((l) => l.startsWith("Bootstream — "));
    expect(headers.filter((l, k) => k > 0 && l === headers[k - 1])).toEqual([]);
    expect(headers.at(-1)).toMatch(/import idle/);
  });

  it("ends with exit 1 and says so when its token is revoked while it watches", async () => {
    const admin = await watch(region.url, region.adminToken);
    try {
      const { token } = await admin.command("token:create", { role: "viewer", name: "wall" });
      const child = spawn(
        process.execPath,
        [BIN, "status", "--watch", "--url", region.url, "--token", token],
        {
          env: { ...process.env, BOOTSTREAM_URL: "", BOOTSTREAM_TOKEN: "" },
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      let out = "";
      let err = "";
      child.stdout.setEncoding("utf8").on("data", (chunk: string) => (out += chunk));
      child.stderr.setEncoding("utf8").on("data", (chunk: string) => (err += chunk));
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no first lines: ${out}`)), 30_000);
        child.stdout.on("data", () => {
          if (!/Synced$/m.test(out)) return;
          clearTimeout(timer);
          resolve();
        });
      });
      await admin.command("token:revoke", { name: "wall" });
      expect(await exited).toBe(1);
      expect(err).toMatch(/unauthorized: the region refused this token \(revoked\?\)/);
    } finally {
      admin.close();
    }
  });
});
