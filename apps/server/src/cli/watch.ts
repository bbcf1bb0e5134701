import { UsageError } from "./usage";

// Follows the region live over Socket.IO; filled in with the typed client.
export async function watchStatus(_url: string, _token: string, _json: boolean): Promise<void> {
  throw new UsageError("status --watch is not available in this build yet");
}
