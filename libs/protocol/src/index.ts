export * from "./errors";
export * from "./state";
export * from "./commands";
export * from "./events";
export * from "./rack";
export * from "./health";
// The cap's bounds live beside parseBandwidth (the CLI checks them without loading the schemas).
export { MAX_BANDWIDTH_LIMIT, MIN_BANDWIDTH_LIMIT } from "@bootstream/images/present";
export { AUDIT_PAGE_MAX, applyEvent, applySnapshot, initialState, type ClientState } from "./fold";
