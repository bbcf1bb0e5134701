export { SourceError } from "./source-error";
export { compareVersionNames, newestVersionName } from "./version-order";
export { displayUrl, resolveItemUrl, sourceBaseUrl, unsafePathReason } from "./source-url";
export { createFetcher, defaultFetcher } from "./fetcher";
export type { Fetcher, FetcherOptions } from "./fetcher";
export { isImageFileType } from "./file-types";
export { readSource } from "./read-source";
export type { ReadSourceOptions } from "./read-source";
export type { SourceBootloader, SourceContents, SourceFile, SourceImage } from "./types";
