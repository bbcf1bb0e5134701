import { existsSync } from "node:fs";
import { createServer, type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, type CliRun } from "../helpers/cli";
import { removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { startMirror, type TestMirror } from "../helpers/mirror";

const cli = runCli;

describe("bootstream CLI against a real region", () => {
  let mirror: TestMirror;
  let region: RegionProcess;
  let as: (args: string[], token?: string) => Promise<CliRun>;

  beforeAll(async () => {
    mirror = await startMirror({ releases: ["jammy", "noble"], arches: ["amd64"], versions: 1 });
    region = await startRegion({ env: { BOOT_SOURCE_URL: mirror.url } });
    as = (args, token = region.adminToken) => cli([...args, "--url", region.url, "--token", token]);
  }, 60_000);

  afterAll(async () => {
    await region?.stop();
    await mirror?.close();
    if (region) await removeDir(region.dataDir);
  });

  it("--help of every command and subcommand prints its usage on stdout and exits 0", async () => {
    const commands = [
      [],
      ["region"],
      ["rack"],
      ["rack", "remove"],
      ["demo"],
      ["mirror", "create"],
      ["mirror", "add-version"],
      ["mirror", "keygen"],
      ["status"],
      ["select"],
      ["deselect"],
      ["import"],
      ["stop-import"],
      ["auto-import"],
      ["source", "set"],
      ["token", "create"],
      ["token", "revoke"],
      ["audit"],
      ["racks"],
      ["catalogue"],
      ["settings", "bandwidth"],
      ["settings", "window"],
      ["settings"],
      ["source"],
      ["token"],
      ["mirror"],
      ["mirror", "sync"],
      ["verify"],
      ["help"],
      ["admin-token"],
    ];
    for (const command of commands) {
      const run = await cli([...command, "--help"]);
      expect({ command, code: run.code, stderr: run.stderr }).toEqual({ command, code: 0, stderr: "" });
      expect(run.stdout).toMatch(/usage|bootstream/);
    }
  }, 300_000);

  it("catalogue lists what the source offers; select of an unknown release lists it too", async () => {
    const json = await as(["catalogue", "--json"]);
    expect(json.code).toBe(0);
    const catalogue = JSON.parse(json.stdout) as { ubuntu: { releases: { release: string }[] } };
    expect(catalogue.ubuntu.releases.map((r) => r.release).sort()).toEqual(["jammy", "noble"]);
    const text = await as(["catalogue"]);
    expect(text.stdout).toMatch(/ubuntu\/noble +24\.04 LTS +amd64/);
    expect(text.stdout).not.toContain("LTS (LTS)");

    const unknown = await as(["select", "ubuntu/focal", "--arch", "amd64"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("ubuntu/focal is not offered");
    expect(unknown.stderr).toMatch(
      /offered: .*ubuntu\/jammy.*ubuntu\/noble|offered: .*ubuntu\/noble.*ubuntu\/jammy/,
    );
  }, 60_000);

  it("stop-import says when nothing was running; audit lists it, newest first, --limit bounds it", async () => {
    const stop = await as(["stop-import"]);
    expect(stop).toMatchObject({ code: 0, stdout: "no import was running\n" });
    await as(["auto-import", "off"]);
    const audit = await as(["audit", "--json", "--limit", "1"]);
    expect(audit.code).toBe(0);
    const entries = JSON.parse(audit.stdout) as { action: string; by: string }[];
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ action: "settings:update", by: "admin" });
    const table = await as(["audit"]);
    expect(table.stdout).toMatch(/ACTION[\s\S]*settings:update[\s\S]*import:stop/);
    expect((await as(["audit", "--limit", "0"])).code).toBe(2);
    expect((await as(["audit", "--limit", "x"])).code).toBe(2);
  }, 60_000);

  it("refuses a word a command does not take (exit 2) and sends nothing: `import stop` starts no import", async () => {
    const audit = async () => (JSON.parse((await as(["audit", "--json"])).stdout) as unknown[]).length;
    const before = await audit();
    const stop = await as(["import", "stop"]);
    expect(stop.code).toBe(2);
    expect(stop.stderr).toBe(
      'bootstream import: unexpected argument "stop"; to stop the import: bootstream stop-import\n',
    );
    for (const args of [
      ["auto-import", "on", "off"],
      ["deselect", "ubuntu/jammy", "ubuntu/noble"],
      ["select", "ubuntu/jammy", "ubuntu/noble"],
      ["stop-import", "now"],
      ["status", "foo"],
      ["token", "create", "extra", "--role", "viewer", "--name", "x"],
      ["source", "set", "http://127.0.0.1:9/", "extra"],
      ["settings", "bandwidth", "off", "extra"],
    ]) {
      const run = await as(args);
      expect({ args, code: run.code }).toEqual({ args, code: 2 });
      expect(run.stderr).toMatch(/unexpected argument|usage/);
    }
    // A flag the command does not take is refused as well, not ignored.
    for (const [args, said] of [
      [["import", "--arch", "amd64"], "bootstream import: unknown flag --arch (--help lists the flags"],
      [["settings", "bandwidth", "20MB/s", "--tz", "Europe/Paris"], "--timezone is for settings window"],
      [["settings", "window", "off", "--timezone", "UTC"], "no window has no zone"],
      [["settings", "window", "01:00-05:00", "--timezone", "UTC", "--tz", "UTC"], "not both"],
      [["token", "revoke", "noc", "--role", "admin"], "takes the NAME alone"],
    ] as const) {
      const run = await as([...args]);
      expect({ args, code: run.code }).toEqual({ args, code: 2 });
      expect(run.stderr).toContain(said);
    }
    // Nothing reached the region: not one command recorded.
    expect(await audit()).toBe(before);

    // A select or deselect that changes nothing says so and saves nothing (no revision, no import).
    const { selection } = JSON.parse((await as(["status", "--json"])).stdout) as {
      selection: { revision: number };
    };
    const again = await as(["select", "ubuntu/noble"]);
    expect(again).toMatchObject({
      code: 0,
      stdout: `selection unchanged (revision ${selection.revision}): ubuntu/noble [amd64] is selected already\n`,
    });
    const typo = await as(["deselect", "ubuntu/nobel"]);
    expect(typo.stdout).toBe(
      `selection unchanged (revision ${selection.revision}): ubuntu/nobel is not selected\n`,
    );
    expect(await audit()).toBe(before);
  }, 60_000);

  it("racks --json parses; rack remove of an unknown rack exits 1; bad usage exits 2", async () => {
    const racks = await as(["racks", "--json"]);
    expect(racks.code).toBe(0);
    expect(JSON.parse(racks.stdout)).toEqual([]);
    expect((await as(["racks"])).stdout).toContain("No racks registered.");
    const remove = await as(["rack", "remove", "ghost"]);
    expect(remove.code).toBe(1);
    expect(remove.stderr).toContain('no rack named "ghost"');
    expect((await as(["rack", "remove"])).code).toBe(2);
  }, 60_000);

  it("a bad role is named; a URL with no region, or not a region, says what to check", async () => {
    const role = await as(["token", "create", "--role", "god", "--name", "x"]);
    expect(role.code).toBe(2);
    expect(role.stderr).toContain('unknown role "god": --role takes admin, viewer or rack');
    expect((await as(["token", "create", "--name", "x"])).stderr).toContain("token create needs --role");

    // A port nobody listens on: one just closed.
    const closed = await new Promise<number>((resolve) => {
      const server = createServer().listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const nobody = await cli(["status", "--url", `http://127.0.0.1:${closed}`, "--token", "t"]);
    expect(nobody).toMatchObject({
      code: 1,
      stdout: "",
      stderr:
        `bootstream status: cannot reach the region at http://127.0.0.1:${closed}: ` +
        "connection refused (ECONNREFUSED); is it running there? (--url or BOOTSTREAM_URL)\n",
    });

    // The mirror is an HTTP server but no region.
    const notRegion = await cli(["status", "--url", mirror.url, "--token", "t"]);
    expect(notRegion.code).toBe(1);
    expect(notRegion.stderr).toContain("with a non-JSON body: is it a Bootstream region?");
    expect(notRegion.stderr).not.toContain("internal");
  }, 60_000);

  it("a region that cannot be reached is said so, with why, for one-shot and live commands alike", async () => {
    // Port 1: fetch never connects to it (a "bad port"), so the reason is that, not a stack or `internal:`.
    for (const command of [["status"], ["import"], ["verify"], ["status", "--watch"]]) {
      const run = await cli([...command, "--url", "http://127.0.0.1:1", "--token", "t"]);
      expect({ command, code: run.code }).toEqual({ command, code: 1 });
      expect(run.stderr).toMatch(
        new RegExp(
          `^bootstream ${command[0]}: cannot reach the region at http://127\\.0\\.0\\.1:1: \\S.*\\n$`,
        ),
      );
      expect(run.stderr).not.toMatch(/internal|unauthorized|\n {4}at /);
    }
    const oneShot = await cli(["status", "--url", "http://127.0.0.1:1", "--token", "t"]);
    expect(oneShot.stderr).toContain('port 1 is one fetch refuses to connect to (a "bad port")');
    const noHost = await cli(["status", "--url", "http://no-such-host.invalid:5240", "--token", "t"]);
    expect(noHost.code).toBe(1);
    expect(noHost.stderr).toContain(
      "cannot reach the region at http://no-such-host.invalid:5240: no such host (ENOTFOUND)",
    );
  }, 60_000);

  it("source set with what is no URL says it is not a valid http(s) URL, exits 1 and changes nothing", async () => {
    const before = JSON.parse((await as(["status", "--json"])).stdout) as { source: unknown };
    for (const url of ["notaurl", "ftp://mirror/"]) {
      const run = await as(["source", "set", url]);
      expect({ url, code: run.code, stdout: run.stdout }).toEqual({ url, code: 1, stdout: "" });
      expect(run.stderr).toContain(
        `bootstream source: invalid: boot source "${url}" is not a valid http(s) URL`,
      );
    }
    const after = JSON.parse((await as(["status", "--json"])).stdout) as { source: unknown };
    expect(after.source).toEqual(before.source);
    const audit = JSON.parse((await as(["audit", "--json"])).stdout) as { action: string }[];
    expect(audit.map((e) => e.action)).not.toContain("source:update");
  }, 60_000);

  it("settings bandwidth refuses a negative, zero or out-of-range cap as a usage error, sending nothing", async () => {
    for (const cap of ["-5", "-5MB/s", "0", "500", "200GB/s", "fast"]) {
      // Against a URL with no region too: were it sent, that would be exit 1 ("cannot reach").
      for (const run of [
        await as(["settings", "bandwidth", cap]),
        await cli(["settings", "bandwidth", cap, "--url", "http://127.0.0.1:1", "--token", "t"]),
      ]) {
        expect({ cap, code: run.code, stdout: run.stdout }).toEqual({ cap, code: 2, stdout: "" });
        expect(run.stderr).toContain(`bandwidth "${cap}": `);
        expect(run.stderr).toContain("usage: bootstream settings bandwidth 20MiB/s|off");
      }
    }
    const status = JSON.parse((await as(["status", "--json"])).stdout) as {
      settings: { bandwidthLimit: unknown };
    };
    expect(status.settings.bandwidthLimit).toBeNull();
    const audit = JSON.parse((await as(["audit", "--json"])).stdout) as { detail: string }[];
    expect(audit.map((e) => e.detail).join("\n")).not.toMatch(/bandwidth/);

    // A good cap is shown in the same (binary) units as a measured rate.
    expect(await as(["settings", "bandwidth", "20MiB/s"])).toMatchObject({
      code: 0,
      stdout: "bandwidth 20 MiB/s\n",
    });
    expect(await as(["settings", "bandwidth", "20MB/s"])).toMatchObject({
      code: 0,
      stdout: "bandwidth 19.07 MiB/s\n",
    });
    expect((await as(["status"])).stdout).toContain("Bandwidth: 19.07 MiB/s");
    expect(await as(["settings", "bandwidth", "off"])).toMatchObject({ code: 0, stdout: "bandwidth off\n" });
  }, 60_000);

  it("a token that was sent but not accepted says so", async () => {
    const run = await as(["status"], "not-a-token");
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("token not accepted");
    expect(run.stderr).not.toContain("send an API token");
  }, 60_000);

  it("admin-token on a stopped region's data dir makes a token the restarted region accepts", async () => {
    await region.stop();
    const made = await cli(["admin-token", "--name", "rescue", "--data-dir", region.dataDir]);
    expect(made.code).toBe(0);
    const token = made.stdout.trim();
    expect(token.length).toBeGreaterThan(20);
    const clash = await cli(["admin-token", "--name", "rescue", "--data-dir", region.dataDir]);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toContain('a token named "rescue" already exists');
    expect((await cli(["admin-token", "--data-dir", region.dataDir])).code).toBe(2);
    // A mistyped data dir: refused, and nothing is made there.
    const typo = `${region.dataDir}-typo`;
    const lost = await cli(["admin-token", "--name", "rescue2", "--data-dir", typo]);
    expect(lost.code).toBe(1);
    expect(lost.stderr).toContain(`no database at ${typo}/bootstream.db`);
    expect(existsSync(typo)).toBe(false);

    region = await startRegion({ dataDir: region.dataDir, env: { BOOT_SOURCE_URL: mirror.url } });
    const status = await cli(["status", "--json", "--url", region.url, "--token", token]);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ you: { name: "rescue", role: "admin" } });
    const audit = await as(["audit", "--json"], token);
    expect(JSON.parse(audit.stdout)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ by: "admin-token (local)", action: "token:create" }),
      ]),
    );
  }, 120_000);
});
