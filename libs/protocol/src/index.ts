export * from "./errors";
export * from "./state";
export * from "./commands";
export * from "./events";
export * from "./rack";
export * from "./health";
export { applyEvent, initialState, type ClientState } from "./fold";
