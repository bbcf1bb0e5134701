import { formatBytes } from "../present/format";

export type DownloadErrorKind = "http" | "network" | "integrity" | "no-space" | "aborted" | "timeout";

export type DownloadErrorOptions = {
  url: string;
  status?: number;
  retryable: boolean;
  cause?: unknown;
};

/**
 * Everything downloadFile rejects with, except local filesystem failures other than ENOSPC
 * (those are not about the download and are passed through as they are).
 * `retryable` says whether trying again later may help; it is false once our own retries ran out
 * for errors that will not cure themselves (a 404, a sha that never matches).
 */
export class DownloadError extends Error {
  readonly kind: DownloadErrorKind;
  readonly url: string;
  readonly status: number | undefined;
  readonly retryable: boolean;

  constructor(kind: DownloadErrorKind, message: string, options: DownloadErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    // "AbortError" is the name fetch, undici and node:stream use, so generic abort checks work too.
    this.name = kind === "aborted" ? "AbortError" : "DownloadError";
    this.kind = kind;
    this.url = options.url;
    this.status = options.status;
    this.retryable = options.retryable;
  }
}

export class NoSpaceError extends DownloadError {
  readonly neededBytes: number;
  readonly freeBytes: number;

  constructor(url: string, neededBytes: number, freeBytes: number, cause?: unknown) {
    super(
      "no-space",
      `not enough disk space for ${url}: need ${formatBytes(neededBytes)} (${neededBytes} bytes incl. margin), ` +
        `${formatBytes(freeBytes)} (${freeBytes} bytes) free; free some space or drop images from the selection`,
      { url, retryable: false, cause },
    );
    this.name = "NoSpaceError";
    this.neededBytes = neededBytes;
    this.freeBytes = freeBytes;
  }
}

export function isAbortError(err: unknown): boolean {
  return (
    err instanceof Error && (err.name === "AbortError" || (err as { code?: unknown }).code === "ABORT_ERR")
  );
}
