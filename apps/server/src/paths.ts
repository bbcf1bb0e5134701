import { fileURLToPath } from "node:url";

// One place that knows where the server's files are. This module sits one level below apps/server
// (src/paths.ts) and so does the compiled bundle (dist/bootstream.js) it is inlined into, so ".."
// is apps/server either way. Other modules must not build paths from their own import.meta.url:
// in the bundle every module shares dist/'s.
const SERVER_ROOT = new URL("..", import.meta.url);

/** The bundled Ubuntu cloud image signing key. */
export const BUNDLED_KEYRING_PATH = fileURLToPath(new URL("assets/ubuntu-cloudimage.pub", SERVER_ROOT));
/** The built dashboard (apps/web/dist). */
export const WEB_DIST = fileURLToPath(new URL("../web/dist", SERVER_ROOT));
/** The `bootstream` executable, for processes the server starts itself (demo racks). */
export const BIN = fileURLToPath(new URL("bin/bootstream.js", SERVER_ROOT));
