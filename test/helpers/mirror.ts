import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { addVersion, createMirror, type MirrorSummary } from "../../apps/server/src/mirror/create-mirror";
import type { MirrorOptions } from "../../apps/server/src/mirror/options";
import { serveDirectory } from "../../apps/server/src/mirror/serve";
import { ThrottleProxy } from "../../apps/server/src/demo/throttle-proxy";

export type TestMirror = {
  dir: string;
  summary: MirrorSummary;
  /** The mirror's URL through the throttling proxy: give this to the region. */
  url: string;
  proxy: ThrottleProxy;
  addVersion(): Promise<MirrorSummary>;
  close(): Promise<void>;
};

/** A mirror made by `bootstream mirror create`, served over real HTTP on loopback behind a throttle. */
export async function startMirror(
  options: MirrorOptions = {},
  bytesPerSecond = Infinity,
): Promise<TestMirror> {
  const dir = await mkdtemp(path.join(tmpdir(), "bootstream-mirror-"));
  const summary = await createMirror(dir, {
    releases: ["jammy", "noble"],
    arches: ["amd64"],
    centos: [],
    versions: 2,
    payloadSize: 32 * 1024,
    ...options,
  });
  const served = await serveDirectory(dir);
  const proxy = await ThrottleProxy.start(served.url, bytesPerSecond);
  return {
    dir,
    summary,
    url: proxy.url,
    proxy,
    addVersion: () => addVersion(dir, options.signingKey ? { signingKey: options.signingKey } : {}),
    close: async () => {
      await proxy.close();
      await served.close();
    },
  };
}

/** The sha256 of every file the mirror lists for an image's newest version (what the region must hold). */
export async function imageShas(mirror: TestMirror, release: string, arch: string): Promise<Set<string>> {
  return new Set((await imageFiles(mirror, release, arch)).keys());
}

/** The same files with their sizes: sha256 → bytes. */
export async function imageFiles(
  mirror: TestMirror,
  release: string,
  arch: string,
): Promise<Map<string, number>> {
  const { readFile } = await import("node:fs/promises");
  type Product = {
    release?: string;
    arch?: string;
    versions: Record<string, { items: Record<string, { sha256: string; ftype: string; size: number }> }>;
  };
  const index = JSON.parse(await readFile(path.join(mirror.dir, "streams/v1/index.json"), "utf8")) as {
    index: Record<string, { path: string }>;
  };
  const shas = new Map<string, number>();
  for (const entry of Object.values(index.index)) {
    const doc = JSON.parse(await readFile(path.join(mirror.dir, entry.path), "utf8")) as {
      products: Record<string, Product>;
    };
    for (const product of Object.values(doc.products)) {
      if (product.release !== release || product.arch !== arch) continue;
      const newest = Object.keys(product.versions).sort().at(-1)!;
      for (const item of Object.values(product.versions[newest]!.items))
        if (item.ftype !== "manifest") shas.set(item.sha256, item.size);
    }
  }
  if (shas.size === 0) throw new Error(`the mirror lists no ${release}/${arch}`);
  return shas;
}
