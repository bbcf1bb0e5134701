import { randomBytes } from "node:crypto";
import * as fsp from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { pino } from "pino";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { RackAgent } from "./agent";
import { HostileRegion, image } from "./hostile-region";

// The agent's defences against a region that breaks the protocol. Our region never sends these
// manifests, so they come from a stand-in; every other agent behaviour is tested against the real
// region in test/integration/rack-agent.test.ts.

type LogLine = { level: number; msg: string; [key: string]: unknown };

let region: HostileRegion;
/** The rack's data directory lives in here, so a write outside it shows up as a stray entry. */
let sandbox: string;
let dataDir: string;
let agent: RackAgent | null;
let lines: LogLine[];

beforeEach(async () => {
  region = await HostileRegion.start();
  sandbox = await fsp.mkdtemp(join(tmpdir(), "bootstream-rack-hostile-"));
  dataDir = join(sandbox, "rack");
  agent = null;
  lines = [];
});

afterEach(async () => {
  await agent?.close();
  await region.close();
  await fsp.rm(sandbox, { recursive: true, force: true });
});

async function startAgent(): Promise<RackAgent> {
  const log = pino(
    { level: "info" },
    { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) },
  );
  agent = await RackAgent.start(
    {
      regionUrl: region.url,
      name: "rack-1",
      credential: { kind: "secret", value: region.secret },
      dataDir,
      syncSchedule: "0 0 1 1 *",
      downloadConcurrency: 2,
      logLevel: "info",
    },
    log,
    { reportIntervalMs: 50 },
  );
  await region.waitFor(() => region.connectedRacks() === 1, "the connection");
  return agent;
}

const messages = (msg: string) => lines.filter((l) => l.msg === msg);

/** Every path under the sandbox, files and directories, relative to it. */
async function tree(): Promise<string[]> {
  const paths: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await fsp.readdir(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      paths.push(relative(sandbox, full));
      if (entry.isDirectory()) await walk(full);
    }
  };
  await walk(sandbox);
  return paths.sort();
}

describe("rack agent against a region that breaks the protocol", { timeout: 30_000 }, () => {
  it("refuses a manifest that names paths outside its tree or that collide, keeps its set, and says so", async () => {
    const kernel = region.addFile(randomBytes(1000));
    const other = region.addFile(randomBytes(500));
    const agent = await startAgent();
    region.sendManifest({
      generation: 1,
      images: [image("ubuntu/noble/amd64", "1", [kernel], ["boot-kernel"])],
    });
    await region.waitFor(() => region.lastReport()?.generation === 1, "the first published set");
    await agent.idle();
    const published = await tree();
    const link = await fsp.readlink(join(dataDir, "current"));
    const requests = region.fileRequests.length;

    const file = (name: string, f = other) => ({ sha256: f.sha256, size: f.bytes.length, ftype: "x", name });
    const hostile: [string, unknown][] = [
      [
        "a version that is ..",
        { generation: 2, images: [{ id: "ubuntu/noble/amd64", version: "..", files: [file("x")] }] },
      ],
      [
        "a name that climbs out of the sandbox",
        {
          generation: 3,
          images: [{ id: "ubuntu/noble/amd64", version: "2", files: [file("../".repeat(8) + "escaped")] }],
        },
      ],
      [
        "an absolute name",
        {
          generation: 4,
          images: [{ id: "ubuntu/noble/amd64", version: "2", files: [file("/etc/escaped")] }],
        },
      ],
      [
        "an id that is a path",
        { generation: 5, images: [{ id: "../../escaped", version: "2", files: [file("x")] }] },
      ],
      [
        "an id with a fourth part",
        { generation: 6, images: [{ id: "ubuntu/noble/amd64/x", version: "2", files: [file("x")] }] },
      ],
      [
        "a NUL in a name",
        { generation: 7, images: [{ id: "ubuntu/noble/amd64", version: "2", files: [file("a\0b")] }] },
      ],
      [
        "one path named twice",
        {
          generation: 8,
          images: [{ id: "ubuntu/noble/amd64", version: "2", files: [file("x"), file("x", kernel)] }],
        },
      ],
      [
        "a file where a directory must be",
        {
          generation: 9,
          images: [{ id: "ubuntu/noble/amd64", version: "2", files: [file("a"), file("a/b", kernel)] }],
        },
      ],
      [
        "one sha256 with two sizes",
        {
          generation: 10,
          images: [{ id: "ubuntu/noble/amd64", version: "2", files: [file("x"), { ...file("y"), size: 1 }] }],
        },
      ],
      [
        "one image listed twice",
        {
          generation: 11,
          images: [
            { id: "ubuntu/noble/amd64", version: "2", files: [file("x")] },
            { id: "ubuntu/noble/amd64", version: "3", files: [file("y")] },
          ],
        },
      ],
      [
        "a sha256 that is not one",
        {
          generation: 12,
          images: [{ id: "ubuntu/noble/amd64", version: "2", files: [{ ...file("x"), sha256: "../../x" }] }],
        },
      ],
      [
        "a negative size",
        {
          generation: 13,
          images: [{ id: "ubuntu/noble/amd64", version: "2", files: [{ ...file("x"), size: -1 }] }],
        },
      ],
      ["a negative generation", { generation: -1, images: [] }],
      ["no images at all", { generation: 14 }],
      ["not an object", "please delete everything"],
      ["null", null],
    ];
    for (const [what, manifest] of hostile) {
      const before = messages("invalid manifest ignored").length;
      region.reports.length = 0;
      region.sendManifest(manifest);
      await region.waitFor(
        () => region.lastReport()?.error?.startsWith("invalid manifest from the region: ") === true,
        `the report refusing ${what}`,
      );
      expect(messages("invalid manifest ignored"), what).toHaveLength(before + 1);
      expect(messages("invalid manifest ignored").at(-1)!.level, what).toBe(50);
      // Still the set it had: machines keep booting from it.
      expect(region.lastReport(), what).toMatchObject({ generation: 1, inventory: [kernel.sha256] });
    }
    await agent.idle();
    expect(messages("sync started")).toHaveLength(1);
    expect(region.fileRequests).toHaveLength(requests);
    expect(await tree()).toEqual(published);
    expect(await fsp.readlink(join(dataDir, "current"))).toBe(link);
    expect(await fsp.readFile(join(dataDir, "current/images/ubuntu/noble/amd64/1/boot-kernel"))).toEqual(
      kernel.bytes,
    );

    // A good manifest afterwards is taken, and the error goes away.
    region.sendManifest({
      generation: 15,
      images: [image("ubuntu/noble/amd64", "2", [other], ["boot-kernel"])],
    });
    await region.waitFor(() => region.lastReport()?.generation === 15, "the good manifest published");
    expect(region.lastReport()).toMatchObject({ error: null, inventory: [other.sha256] });
    expect(await fsp.readFile(join(dataDir, "current/images/ubuntu/noble/amd64/2/boot-kernel"))).toEqual(
      other.bytes,
    );
    expect((await tree()).filter((path) => !path.startsWith("rack"))).toEqual([]);
  });

  it("refuses a hostile first manifest before it has published anything", async () => {
    const file = region.addFile(randomBytes(100));
    const agent = await startAgent();
    region.sendManifest({
      generation: 1,
      images: [
        {
          id: "ubuntu/noble/amd64",
          version: "1",
          files: [{ sha256: file.sha256, size: 100, ftype: "x", name: "../".repeat(8) + "escaped" }],
        },
      ],
    });
    await region.waitFor(() => region.lastReport()?.error != null, "an error report");
    await agent.idle();
    expect(region.lastReport()).toMatchObject({ generation: 0, inventory: [], syncing: false });
    expect(region.lastReport()!.error).toMatch(
      /^invalid manifest from the region: images\.0\.files\.0\.name: /,
    );
    expect(messages("sync started")).toEqual([]);
    expect(region.fileRequests).toEqual([]);
    expect((await tree()).filter((path) => !path.startsWith("rack"))).toEqual([]);
    await expect(fsp.lstat(join(dataDir, "current"))).rejects.toMatchObject({ code: "ENOENT" });
  });
});
