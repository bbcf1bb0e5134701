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
