// Child of the benches: serves one directory with the mirror's static server and reports its URL.
//   node --import tsx bench/serve-dir.ts DIR   (forked with an IPC channel; exits when the parent goes)
import { serveDirectory } from "../apps/server/src/mirror/serve";

const dir = process.argv[2];
if (dir === undefined) throw new Error("usage: serve-dir.ts DIR");
const served = await serveDirectory(dir, { host: "127.0.0.1" });
process.send?.({ url: served.url });
const stop = () => void served.close().then(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("disconnect", stop);
