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
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).message;
      throw new RemoteError({
        code: "internal",
        message: `cannot reach the region at ${this.url} (${cause}); is it running there? (--url or BOOTSTREAM_URL)`,
      });
    }
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new RemoteError({
        code: "internal",
        message: `${this.url} answered ${response.status} with a non-JSON body: is it a Bootstream region? (--url or BOOTSTREAM_URL)`,
      });
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
