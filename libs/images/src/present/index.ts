// The domain's presentation entry point, `@bootstream/images/present`: status wording, formatting,
// rates and selection keys, shared by the dashboard and the CLI. Browser-safe: imports only pure
// modules of the domain (no Node built-ins, no network, no streams), so the dashboard bundle stays small.

export * from "./wording";
export * from "./format";
export * from "./rate";
export * from "./keys";
export { normaliseSelectionItems } from "../selection";
export type { ImageState, ImageStatus, SelectionItem } from "../model";
export * from "../window";
export * from "./bandwidth";
export * from "./verify";
