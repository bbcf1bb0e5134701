import { UsageError } from "./usage";

export async function rackCommand(_argv: string[]): Promise<number> {
  throw new UsageError("the rack agent is not available in this build yet");
}
