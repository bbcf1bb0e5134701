export { addVersion, createMirror, LAYOUT_FILE } from "./create-mirror";
export type { MirrorSummary } from "./create-mirror";
export { mirrorCommand, MIRROR_USAGE } from "./command";
export type { CommandIo } from "./command";
export { DEFAULT_LAYOUT, MirrorOptionsError } from "./options";
export type { MirrorLayout, MirrorOptions, PayloadSizes } from "./options";
export { serveDirectory } from "./serve";
export type { ServedDirectory } from "./serve";
export { generateSigningKey } from "./signing";
