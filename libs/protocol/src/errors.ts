export const ERROR_CODES = [
  "unauthorized",
  "forbidden",
  "invalid",
  "conflict",
  "not-found",
  "source-error",
  "rate-limited",
  "internal",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export type ErrorBody = { code: ErrorCode; message: string; [extra: string]: unknown };

/** A refusal with a contract code. Handlers throw it; the transport turns it into `{ ok: false, error }`. */
export class CommandError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "CommandError";
  }

  toBody(): ErrorBody {
    return { ...this.extra, code: this.code, message: this.message };
  }
}

/** HTTP status for each code, used by POST /api/v1/commands/:name. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  unauthorized: 401,
  forbidden: 403,
  invalid: 400,
  conflict: 409,
  "not-found": 404,
  "source-error": 502,
  "rate-limited": 429,
  internal: 500,
};
