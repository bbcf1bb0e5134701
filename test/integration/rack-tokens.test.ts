import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { io } from "socket.io-client";
import { RACK_NAMESPACE } from "@bootstream/protocol";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { BIN, TEST_RACK_SECRET, type RegionProcess } from "../helpers/region";
import { startRackSite, type RackProcess, type RackSite } from "../helpers/rack";
import { connect } from "../helpers/sockets";
import { waitFor, watch } from "../helpers/watch";

const NOBLE = "ubuntu/noble/amd64";

/** Connects to `/rack` as an agent would; resolves "connected" or the connect_error message. */
function rackSocket(url: string, auth: Record<string, string>): Promise<{ outcome: string; close(): void }> {
  const socket = io(url + RACK_NAMESPACE, {
    auth,
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
  });
  return new Promise((resolve) => {
    socket.once("connect", () => resolve({ outcome: "connected", close: () => socket.close() }));
    socket.once("connect_error", (error) => {
      socket.close();
      resolve({ outcome: error.message, close: () => undefined });
    });
  });
}

describe("rack tokens", () => {
  let site: RackSite;
  let region: RegionProcess;
  let client: BootstreamClient;
  let token: string;
  let rack: RackProcess | null = null;

  beforeAll(async () => {
    site = await startRackSite({ releases: ["noble"], arches: ["amd64"] });
    ({ region, client } = site);
  });
  afterAll(async () => {
    await site?.stop();
  });

  it("are made by `bootstream token create --role rack`, and let that rack register and pull /files", async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [
      BIN,
      "token",
      "create",
      "--role",
      "rack",
      "--name",
      "rack-a",
      "--url",
      region.url,
      "--token",
      region.adminToken,
    ]);
    token = stdout.trim();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    rack = await site.startRack({ name: "rack-a", token });
    const state = await waitFor(
      client,
      (s) => s.images.get(NOBLE)?.state === "rack-synced",
      30_000,
      "rack-synced",
    );
    expect(state.racks.map((r) => [r.name, r.online])).toEqual([["rack-a", true]]);
    const { entries } = await client.command("audit:list", {});
    expect(entries[0]).toMatchObject({ action: "token:create", detail: 'rack token "rack-a"' });
  });

  it("register no other rack name: a second connection claiming another rack is refused", async () => {
    const other = await rackSocket(region.url, { token, name: "rack-b" });
    expect(other.outcome).toBe("unauthorized");
    await logged(region, '"reason":"the rack token of \\"rack-a\\" claims \\"rack-b\\""');
    // The site-wide secret no longer registers a rack that has a token of its own.
    const impostor = await rackSocket(region.url, { secret: TEST_RACK_SECRET, name: "rack-a" });
    expect(impostor.outcome).toBe("unauthorized");
    await logged(region, "has a rack token of its own; the site-wide rack secret may not register it");
    // The real rack-a was never disconnected by either, and rack-b does not exist.
    expect(rack!.logs().filter((l) => l.msg === "disconnected from region")).toEqual([]);
    expect(client.state.racks.map((r) => [r.name, r.online])).toEqual([["rack-a", true]]);
    // The secret still registers racks without a token of their own (the weaker, older way).
    const legacy = await rackSocket(region.url, { secret: TEST_RACK_SECRET, name: "rack-legacy" });
    expect(legacy.outcome).toBe("connected");
    legacy.close();
  });

  it("are no way in for people: sockets and the HTTP API refuse them; /files takes them", async () => {
    await expect(connect(region.url, token)).rejects.toThrow("unauthorized");
    const state = await fetch(`${region.url}/api/v1/state`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(state.status).toBe(401);
    const sha = await firstStoredSha(region);
    const asRack = await fetch(`${region.url}/files/${sha}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(asRack.status).toBe(200);
    await asRack.arrayBuffer();
    const asAdmin = await fetch(`${region.url}/files/${sha}`, {
      headers: { authorization: `Bearer ${region.adminToken}` },
    });
    expect(asAdmin.status).toBe(401);
  });

  it("take a rack name only, and admins only make them", async () => {
    await expect(
      client.command("token:create", { role: "rack", name: "rack with spaces" }),
    ).rejects.toMatchObject({
      code: "invalid",
    });
    const { token: viewer } = await client.command("token:create", { role: "viewer", name: "noc" });
    const asViewer = await watch(region.url, viewer);
    await expect(asViewer.command("token:create", { role: "rack", name: "rack-z" })).rejects.toMatchObject({
      code: "forbidden",
    });
    asViewer.close();
  });

  it("revoked: the rack is cut off at once and refused from then on", async () => {
    await client.command("token:revoke", { name: "rack-a" });
    await waitFor(
      client,
      (s) => s.racks.find((r) => r.name === "rack-a")?.online === false,
      20_000,
      "rack-a offline",
    );
    await rack!.waitForLog("disconnected from region");
    expect((await rackSocket(region.url, { token, name: "rack-a" })).outcome).toBe("unauthorized");
    await logged(region, "rack refused: unknown or revoked rack token");
  });
});

/** The region's stdout arrives on its own schedule: wait for the line rather than race it. */
async function logged(region: RegionProcess, text: string): Promise<void> {
  for (let i = 0; i < 100 && !region.output().includes(text); i++)
    await new Promise((resolve) => setTimeout(resolve, 50));
  expect(region.output()).toContain(text);
}

async function firstStoredSha(region: RegionProcess): Promise<string> {
  const { readdir } = await import("node:fs/promises");
  const path = await import("node:path");
  const store = path.join(region.dataDir, "store");
  const prefix = (await readdir(store))[0]!;
  return (await readdir(path.join(store, prefix)))[0]!;
}
