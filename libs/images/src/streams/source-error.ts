/**
 * Anything wrong with a boot source: it cannot be fetched, parsed or verified, or it names a file it
 * may not. `code` is the contract's error code, so a command handler can pass the error on as it is.
 */
export class SourceError extends Error {
  readonly code = "source-error";

  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "SourceError";
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
