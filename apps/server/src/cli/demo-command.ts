import { UsageError } from "./usage";

export async function demoCommand(_argv: string[]): Promise<number> {
  throw new UsageError("the demo is not available in this build yet; run `npm start` for the region");
}
