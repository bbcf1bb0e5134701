export * from "./errors";
export * from "./state";
export * from "./commands";
export * from "./events";
export * from "./rack";
export * from "./health";
export { AUDIT_PAGE_MAX, applyEvent, applySnapshot, initialState, type ClientState } from "./fold";
