import type {
  Ack,
  CommandName,
  CommandPayload,
  CommandResults,
  ErrorBody,
  Snapshot,
} from "@bootstream/protocol";

/** A refused or failed command: the CLI prints it and exits 1. */
export class RemoteError extends Error {
  constructor(readonly body: ErrorBody) {
    super(`${body.code}: ${body.message}`);
    this.name = "RemoteError";
  }
}

/**
 * The region could not be reached ("cannot reach the region at URL: reason"), or what answered is no
 * region: no answer of the region's, so no contract code. The CLI prints the message and exits 1.
 */
export class UnreachableError extends Error {
  constructor(
    readonly url: string,
    message: string,
  ) {
    super(message);
    this.name = "UnreachableError";
  }

  static because(url: string, reason: string): UnreachableError {
    return new UnreachableError(url, `cannot reach the region at ${url}: ${reason}`);
  }
}

const HINT = "is it running there? (--url or BOOTSTREAM_URL)";

/** Why a request got no answer, in words, from what fetch threw. */
export function unreachableReason(error: unknown, url: string): string {
  const failure = error as { name?: string; message?: string; cause?: { code?: string; message?: string } };
  if (failure.name === "TimeoutError") return `no answer within 30 s; ${HINT}`;
  const code = failure.cause?.code;
  if (code === "ECONNREFUSED") return `connection refused (ECONNREFUSED); ${HINT}`;
  if (code === "ENOTFOUND" || code === "EAI_AGAIN")
    return `no such host (${code}); check the host name in --url or BOOTSTREAM_URL`;
  if (code === "ECONNRESET") return `the connection was reset (ECONNRESET); ${HINT}`;
  if (code) return `${code}; ${HINT}`;
  // fetch never connects to ports browsers block (1, 9, 25, …; the WHATWG "bad port" list).
  if (failure.cause?.message === "bad port")
    return `port ${new URL(url).port} is one fetch refuses to connect to (a "bad port"); give the region's port (5240 by default)`;
  return `${failure.cause?.message ?? failure.message ?? String(error)}; ${HINT}`;
}

/** The one-shot client commands speak HTTP: one request, one answer, nothing to keep open. */
export class HttpClient {
  constructor(
    readonly url: string,
    private readonly token: string,
  ) {}

  private async request(method: string, path: string, body?: unknown): Promise<unknown> {
    let response: Response;
    try {
      // Relative to the URL given, so a region behind a proxy at https://host/bootstream/ works.
      const base = this.url.endsWith("/") ? this.url : `${this.url}/`;
      response = await fetch(new URL(path.replace(/^\//, ""), base), {
        method,
        headers: { authorization: `Bearer ${this.token}`, "content-type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(30_000),
      });
    } catch (error) {
      throw UnreachableError.because(this.url, unreachableReason(error, this.url));
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new UnreachableError(
        this.url,
        `${this.url} answered ${response.status} with a non-JSON body: is it a Bootstream region? (--url or BOOTSTREAM_URL)`,
      );
    }
    const error = (json as { error?: ErrorBody }).error;
    if (!response.ok && error) throw new RemoteError(error);
    if (!response.ok)
      throw new RemoteError({ code: "internal", message: `the region answered ${response.status}` });
    return json;
  }

  async state(): Promise<Snapshot & { seq: number }> {
    return (await this.request("GET", "/api/v1/state")) as Snapshot & { seq: number };
  }

  async command<N extends CommandName>(name: N, payload: CommandPayload<N>): Promise<CommandResults[N]> {
    const answer = (await this.request(
      "POST",
      `/api/v1/commands/${encodeURIComponent(name)}`,
      payload,
    )) as Ack<CommandResults[N]>;
    if (!answer.ok) throw new RemoteError(answer.error);
    return answer;
  }
}
