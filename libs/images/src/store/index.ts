export { createDownloadAgent, type DownloadAgentOptions } from "./agent";
export type { BackoffOptions } from "./backoff";
export { BandwidthLimiter, formatBandwidth, parseBandwidth, type LimiterClock } from "./bandwidth";
export { ContentStore, type FileCheck, type PartialMeta } from "./content-store";
export { downloadFile, type DownloadOptions, type DownloadResult } from "./download";
export { LARGE_STAGING_BYTES, STAGING_BYTES, dropIdleStaging } from "./partial-writer";
export { DownloadError, NoSpaceError, isAbortError, type DownloadErrorKind } from "./errors";
export { runPool } from "./pool";
export { assertSha256, isSha256 } from "./sha";
