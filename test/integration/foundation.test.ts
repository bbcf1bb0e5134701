import { spawn } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BIN, removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { connect, post, send } from "../helpers/sockets";

function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("region foundation", () => {
  let region: RegionProcess;

  beforeAll(async () => {
    region = await startRegion();
  });
  afterAll(async () => {
    await region.stop();
    await removeDir(region.dataDir);
  });

  it("sends the security headers on the dashboard and the API, errors included", async () => {
    const routes = ["/", "/favicon.svg", "/api/v1/state", `/files/${"0".repeat(64)}`, "/healthz", "/nowhere"];
    for (const route of routes) {
      const response = await fetch(`${region.url}${route}`);
      await response.arrayBuffer();
      expect(response.headers.get("content-security-policy"), route).toBe(
        "default-src 'self'; frame-ancestors 'none'",
      );
      expect(response.headers.get("x-frame-options")).toBe("DENY");
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      expect(response.headers.get("referrer-policy")).toBe("no-referrer");
    }
    // The favicon is a file of the region's (a data: URI would break `default-src 'self'`).
    const favicon = await fetch(`${region.url}/favicon.svg`);
    expect(favicon.status).toBe(200);
    expect(favicon.headers.get("content-type")).toContain("image/svg+xml");
    expect(await favicon.text()).toContain("<svg");
  });

  it("answers /healthz when the database answers", async () => {
    const response = await fetch(`${region.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: "ok", role: "single", checks: { database: "ok" } });
  });

  it("refuses a socket without a token, or with a wrong one, as unauthorized", async () => {
    await expect(connect(region.url, undefined)).rejects.toThrow("unauthorized");
    await expect(connect(region.url, "wrong")).rejects.toThrow("unauthorized");
  });

  it("sends an admin's socket a snapshot that says who it is", async () => {
    const { socket, snapshot } = await connect(region.url, region.adminToken);
    expect(snapshot.you).toEqual({ name: "admin", role: "admin" });
    expect(typeof snapshot.seq).toBe("number");
    socket.close();
  });

  it("serves the dashboard at / and JSON errors elsewhere", async () => {
    const page = await fetch(`${region.url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(await page.text()).toContain('<div id="app"');
    const missing = await fetch(`${region.url}/api/v1/nothing`, {
      headers: { authorization: `Bearer ${region.adminToken}` },
    });
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("not-found");
  });

  it("exposes Prometheus metrics with sockets by role", async () => {
    const text = await (await fetch(`${region.url}/metrics`)).text();
    expect(text).toMatch(/bootstream_sockets\{role="admin"\} \d+/);
    expect(text).toContain("process_cpu_user_seconds_total");
    expect(text).toMatch(/bootstream_images\{state="synced"\} \d+/);
    expect(text).toContain("bootstream_import_running");
    expect(text).toMatch(/bootstream_racks\{online="true"\} 0/);
  });

  it("tells a source that fails the same way again nothing new: no source event per catalogue:get", async () => {
    // The source is unreachable and no catalogue is cached: each catalogue:get reads it and fails.
    // Were each failure a `source` event, a dashboard (which asks again on each) would loop.
    const { socket } = await connect(region.url, region.adminToken);
    try {
      let events = 0;
      socket.on("source", () => events++);
      for (let i = 0; i < 5; i++) {
        const answer = await send(socket, "catalogue:get", {});
        expect(answer).toMatchObject({ ok: false, error: { code: "source-error" } });
      }
      // Every event the five reads caused has arrived before this answer (one socket, in order).
      await send(socket, "state:get", {});
      expect(events).toBeLessThanOrEqual(1);
    } finally {
      socket.close();
    }
  });

  it("answers the HTTP API only with a bearer token, and malformed JSON with invalid", async () => {
    expect((await fetch(`${region.url}/api/v1/state`)).status).toBe(401);
    const bad = await post(region.url, region.adminToken, "settings:update", "{not json");
    expect(bad.status).toBe(400);
    expect((bad.json.error as { code: string }).code).toBe("invalid");
    // `curl -d` sends a form: refused, saying how to send it, and nothing changes (it was read as
    // an empty payload, and an import:start with a body in another type ran as if it had none).
    const before = (await post(region.url, region.adminToken, "state:get", {})).json;
    const form = await fetch(`${region.url}/api/v1/commands/settings:update`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${region.adminToken}`,
        "content-type": "application/x-www-form-urlencoded",
      },
      body: JSON.stringify({ autoImport: false }),
    });
    expect(form.status).toBe(400);
    expect(await form.json()).toEqual({
      ok: false,
      error: {
        code: "invalid",
        message:
          "the body is application/x-www-form-urlencoded, not JSON: send it with 'Content-Type: application/json'",
      },
    });
    const after = (await post(region.url, region.adminToken, "state:get", {})).json;
    expect(after.settings).toEqual(before.settings);
    // JSON that is no object, and the wrong method, each say what to send instead.
    const nul = await post(region.url, region.adminToken, "state:get", "null");
    expect(nul.status).toBe(400);
    expect((nul.json.error as { message: string }).message).toMatch(/not a JSON object/);
    const get = await fetch(`${region.url}/api/v1/commands/import:start`, {
      headers: { authorization: `Bearer ${region.adminToken}` },
    });
    expect(get.status).toBe(405);
    expect(get.headers.get("allow")).toBe("POST");
    expect(await get.json()).toEqual({
      ok: false,
      error: { code: "invalid", message: "GET is not allowed on /api/v1/commands/import:start: use POST" },
    });
    // No body at all is an empty payload, whatever the type says.
    const empty = await fetch(`${region.url}/api/v1/commands/state:get`, {
      method: "POST",
      headers: { authorization: `Bearer ${region.adminToken}` },
    });
    expect(empty.status).toBe(200);
    const state = await fetch(`${region.url}/api/v1/state`, {
      headers: { authorization: `Bearer ${region.adminToken}` },
    });
    expect(((await state.json()) as { you: { role: string } }).you.role).toBe("admin");
  });

  it("creates a viewer token with the CLI; the viewer watches but may not change anything", async () => {
    const created = await run([
      "token",
      "create",
      "--role",
      "viewer",
      "--name",
      "noc-wall",
      "--url",
      region.url,
      "--token",
      region.adminToken,
    ]);
    expect(created.code).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^[A-Za-z0-9_-]{40,}$/);
    const { socket, snapshot } = await connect(region.url, token);
    expect(snapshot.you).toEqual({ name: "noc-wall", role: "viewer" });
    const answer = await send(socket, "settings:update", { autoImport: false });
    expect(answer).toMatchObject({ ok: false, error: { code: "forbidden" } });
    socket.close();
  });

  it("disconnects a revoked token's sockets at once", async () => {
    const { json } = await post(region.url, region.adminToken, "token:create", {
      role: "viewer",
      name: "temp",
    });
    const { socket } = await connect(region.url, json.token as string);
    const gone = new Promise<string>((resolve) => socket.once("disconnect", (reason) => resolve(reason)));
    const revoked = await run(["token", "revoke", "temp", "--url", region.url, "--token", region.adminToken]);
    expect(revoked.code).toBe(0);
    expect(await gone).toBe("io server disconnect");
    await expect(connect(region.url, json.token as string)).rejects.toThrow("unauthorized");
  });

  it("exits 1 with the refusal on stderr when the region refuses a CLI command", async () => {
    const result = await run([
      "token",
      "revoke",
      "nobody",
      "--url",
      region.url,
      "--token",
      region.adminToken,
    ]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("not-found");
  });
});

describe("region configuration and lifecycle", () => {
  it.each([
    [{ PORT: "abc" }, "PORT"],
    [{ IMPORT_SCHEDULE: "every hour" }, "IMPORT_SCHEDULE"],
    [{ VERIFY_SCHEDULE: "weekly" }, "VERIFY_SCHEDULE"],
    [{ BOOT_SOURCE_KEYRING: "/nonexistent/key.asc" }, "BOOT_SOURCE_KEYRING"],
    [{ DOWNLOAD_CONCURRENCY: "0" }, "DOWNLOAD_CONCURRENCY"],
    [{ DATABASE_URL: "mysql://x" }, "DATABASE_URL"],
  ])("exits 2 with one line naming the bad setting (%o)", async (env, name) => {
    const result = await run(["region"], { DATA_DIR: "/nonexistent-never-created", ...env });
    expect(result.code).toBe(2);
    const lines = result.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(name);
  });

  it("exits 2 on a usage error and lists the commands with --help", async () => {
    expect((await run(["frobnicate"])).code).toBe(2);
    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    for (const command of ["region", "rack", "demo", "mirror", "status", "select", "token"])
      expect(help.stdout).toContain(command);
  });

  it("stops gracefully on SIGTERM and keeps what was saved across a restart", async () => {
    const firstToken = "first-admin-token-0123456789abcdef0123456789";
    const laterToken = "ignored-now-admin-token-0123456789abcdef0123456789";
    const first = await startRegion({ adminToken: firstToken });
    const saved = await post(first.url, firstToken, "settings:update", { autoImport: false });
    expect(saved.status).toBe(200);
    expect(await first.stop()).toBe(0);
    // ADMIN_TOKEN and BOOT_SOURCE_URL only count on the first start: the stored ones stand, and the
    // start says so rather than ignore them without a word.
    const second = await startRegion({
      dataDir: first.dataDir,
      adminToken: laterToken,
      env: { BOOT_SOURCE_URL: "http://127.0.0.1:9/another/" },
    });
    await expect(connect(second.url, laterToken)).rejects.toThrow("unauthorized");
    expect(second.output()).toContain("ADMIN_TOKEN is not a token of this region");
    expect(second.output()).toContain("BOOT_SOURCE_URL is not the boot source");
    expect(first.output()).not.toContain("is not a token of this region");
    expect(first.output()).not.toContain("is not the boot source");
    const { socket, snapshot } = await connect(second.url, firstToken);
    expect(snapshot.settings.autoImport).toBe(false);
    socket.close();
    expect(await second.stop()).toBe(0);
    await removeDir(first.dataDir);
  });

  it("refuses a second region on a data dir in use, and takes over the lock of one that died", async () => {
    const first = await startRegion();
    try {
      const lock = path.join(first.dataDir, "region.lock");
      expect(JSON.parse(await readFile(lock, "utf8"))).toMatchObject({ pid: first.child.pid });
      const second = await run(["region"], {
        DATA_DIR: first.dataDir,
        PORT: "0",
        BOOT_SOURCE_URL: "http://127.0.0.1:9/unreachable/",
      });
      expect(second.code).toBe(1);
      expect(second.stderr).toContain(`${first.dataDir} is in use by another region (pid ${first.child.pid}`);
      // The first goes on, and its lock is still its own.
      expect((await fetch(`${first.url}/healthz`)).status).toBe(200);
      expect(JSON.parse(await readFile(lock, "utf8"))).toMatchObject({ pid: first.child.pid });
      expect(await first.stop()).toBe(0);
      await expect(readFile(lock, "utf8")).rejects.toThrow();

      // A lock left by a region that is gone (kill -9, a crash) is taken over.
      await writeFile(lock, JSON.stringify({ pid: 2 ** 22 + 1, host: hostname(), startedAt: "then" }));
      const third = await startRegion({ dataDir: first.dataDir });
      // Stopped as soon as it listens (its start is still ending): a clean stop all the same.
      const code = await third.stop();
      expect(code, third.output()).toBe(0);
    } finally {
      await removeDir(first.dataDir);
    }
  });
});
