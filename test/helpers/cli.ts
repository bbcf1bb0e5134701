import { execFile } from "node:child_process";
import { BIN } from "./region";

export type CliRun = { code: number; stdout: string; stderr: string };

/**
 * Runs the real `bootstream` CLI to its end (60 s at most), with BOOTSTREAM_URL and BOOTSTREAM_TOKEN
 * cleared so only the flags given count; `env` adds to the environment.
 */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { env: { ...process.env, BOOTSTREAM_URL: "", BOOTSTREAM_TOKEN: "", ...env }, timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
