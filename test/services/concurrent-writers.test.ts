import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { selectedImageIds, type Selection, type SelectionItem } from "@bootstream/images";
import type { BootstreamClient } from "@bootstream/protocol/client";
import { startRegion, type RegionHandle } from "../../apps/server/src/region/region";
import { DEFAULT_CLIENT_LIMITS, rate } from "../../apps/server/src/region/client-limits";
import { createLogger } from "../../apps/server/src/log";
import { createScratchDatabase, gate, probePostgres } from "../helpers/services";
import { removeDir } from "../helpers/region";
import { regionConfig } from "../helpers/in-process";
import { startMirror, type TestMirror } from "../helpers/mirror";
import { waitFor, watch } from "../helpers/watch";

const postgres = gate("PostgreSQL", await probePostgres());
const TOKEN = "concurrent-writers-admin-token-0123456789";
const RELEASES = ["focal", "jammy", "noble"];
const ARCHES = ["amd64", "arm64"];
const WRITERS = 20;
const ROUNDS = 4;

// One region on a real PostgreSQL, where Database.write does not serialise: 20 admins save,
// deselect and (with new upstream versions) switch images while imports run, all at once.
describe.skipIf(postgres.skip)("20 concurrent writers on PostgreSQL", () => {
  let database: Awaited<ReturnType<typeof createScratchDatabase>>;
  let mirror: TestMirror;
  let dataDir: string;
  let region: RegionHandle;
  const clients: BootstreamClient[] = [];

  beforeAll(async () => {
    if (postgres.mustFail) throw new Error(postgres.mustFail);
    database = await createScratchDatabase();
    mirror = await startMirror(
      { releases: RELEASES, arches: ARCHES, payloadSize: 16 * 1024 },
      2 * 1024 * 1024,
    );
    dataDir = await mkdtemp(path.join(tmpdir(), "bootstream-writers-"));
    region = await startRegion(
      regionConfig(dataDir, {
        databaseUrl: database.url,
        bootSourceUrl: mirror.url,
        adminToken: TOKEN,
        downloadConcurrency: 4,
        // The writers go as fast as the region answers: what is under test is the database under
        // concurrent writers, not the per-token rate limit (test/integration/abuse.test.ts has that).
        limits: {
          ...DEFAULT_CLIENT_LIMITS,
          connection: rate(10_000),
          token: rate(10_000),
          address: rate(10_000),
        },
      }),
      createLogger("silent", "writers"),
    );
    for (let i = 0; i < WRITERS; i++) clients.push(await watch(region.url, TOKEN));
  });
  afterAll(async () => {
    for (const client of clients) client.close();
    await region?.close();
    await mirror?.close();
    await database?.drop();
    if (dataDir) await removeDir(dataDir);
  });

  it("leaves no orphan file rows and brings no deselected image back", async () => {
    // The first import (the default selection) is under way once this node leads.
    await waitFor(clients[0]!, (s) => s.selection.revision > 0, 30_000, "the default selection");
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const pick = (): SelectionItem[] =>
      RELEASES.flatMap((release) => {
        const arches = ARCHES.filter(() => random() < 0.5);
        return arches.length && random() < 0.6 ? [{ os: "ubuntu", release, arches }] : [];
      });
    let saved = 0;
    let conflicts = 0;
    let versions = 0;

    const writer = async (client: BootstreamClient, index: number) => {
      let revision = client.state.selection.revision;
      for (let round = 0; round < ROUNDS; round++) {
        if (index === 0 && round > 0) {
          // A new upstream version of everything: the next import switches every held image.
          await mirror.addVersion();
          versions++;
          await client.command("import:start", {});
        }
        for (let attempt = 0; attempt < 10; attempt++) {
          try {
            revision = (await client.command("selection:save", { revision, items: pick() })).selection
              .revision;
            saved++;
            break;
          } catch (error) {
            const refusal = error as { code?: string; extra?: { selection?: Selection } };
            if (refusal.code !== "conflict" || !refusal.extra?.selection) throw error;
            conflicts++;
            revision = refusal.extra.selection.revision;
          }
        }
        if (index % 5 === 1) await client.command("import:start", {});
      }
    };
    await Promise.all(clients.map((client, index) => writer(client, index)));
    expect(saved).toBeGreaterThanOrEqual(WRITERS);
    expect(conflicts, "the writers did race").toBeGreaterThan(0);
    expect(versions).toBe(ROUNDS - 1);

    // Quiet: whatever imports the saves queued have ended.
    await region.context.importer.idle();
    const db = new pg.Client({ connectionString: database.url });
    await db.connect();
    try {
      const orphans = await db.query(
        `SELECT f.image_id, f.version FROM image_file f LEFT JOIN image i ON i.id = f.image_id
         WHERE i.id IS NULL OR (f.version IS DISTINCT FROM i.version AND f.version IS DISTINCT FROM i.target_version)`,
      );
      expect(
        orphans.rows,
        "file rows of no image, or of a version the image neither holds nor imports",
      ).toEqual([]);
      const selection = (await db.query("SELECT items FROM selection WHERE id = 1")).rows[0] as {
        items: string;
      };
      const wanted = selectedImageIds(JSON.parse(selection.items) as SelectionItem[]).sort();
      const rows = (await db.query("SELECT id, state, version FROM image ORDER BY id")).rows as {
        id: string;
        state: string;
        version: string | null;
      }[];
      expect(
        rows.map((r) => r.id),
        "exactly the selected images, none brought back",
      ).toEqual(wanted);
      // Memory (what every client is told) agrees with the database.
      const memory = region.context.images
        .all()
        .map((r) => ({ id: r.id, state: r.state, version: r.version }))
        .sort((a, b) => a.id.localeCompare(b.id));
      expect(memory).toEqual(rows);
      await waitFor(
        clients[0]!,
        (s) => [...s.images.keys()].sort().join() === wanted.join(),
        10_000,
        "clients to see the same images",
      );
    } finally {
      await db.end();
    }

    // And it all still works: one more import syncs every selected image at the newest version.
    await clients[0]!.command("import:start", {});
    await region.context.importer.idle();
    for (const image of region.context.images.all()) expect(image.state, image.id).toBe("synced");
  });
});
