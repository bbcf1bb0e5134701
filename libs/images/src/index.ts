export * from "./model";
export * from "./streams";
export * from "./catalogue";
export * from "./selection";
export * from "./store";
export * from "./plan";
export * from "./lifecycle";
export * from "./window";
