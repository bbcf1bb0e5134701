import { parseArgs } from "node:util";
import type { VerifyState } from "@bootstream/protocol";
import { formatBytes, verifyOutcome, verifyPercent, verifySummary } from "@bootstream/images/present";
import { connectLive, refusedLater } from "./watch";
import { UsageError } from "./usage";

const BAR = 24;

function bar(state: VerifyState): string {
  const filled = Math.round((verifyPercent(state) / 100) * BAR);
  return `[${"#".repeat(filled)}${"-".repeat(BAR - filled)}]`;
}

/** The line a pipe gets when something it would want to know changed (every 10%, each find). */
function milestone(state: VerifyState): string {
  return `${state.running}|${Math.floor(verifyPercent(state) / 10)}|${state.corrupt.join()}|${state.repaired.join()}`;
}

/**
 * `bootstream verify [--repair] [--watch]`: starts `store:verify` (or joins the run going) and waits
 * for it to end, following the region's `verify` events. `--watch` shows the progress as it goes: a
 * bar redrawn in place on a terminal, a plain line per 10% and per file found to a pipe. Exit 0 when
 * the store is clean or every corrupt file was repaired, 1 when corrupt files are left (or the run
 * failed), 2 on a usage error.
 */
export async function verifyCommand(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        url: { type: "string" },
        token: { type: "string" },
        repair: { type: "boolean" },
        watch: { type: "boolean" },
      },
      allowPositionals: false,
      strict: true,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const url = (values.url as string | undefined) ?? process.env.BOOTSTREAM_URL ?? "http://127.0.0.1:5240";
  const token = (values.token as string | undefined) ?? process.env.BOOTSTREAM_TOKEN;
  if (!token) throw new UsageError("no token: pass --token TOKEN or set BOOTSTREAM_TOKEN");
  try {
    new URL(url);
  } catch {
    throw new UsageError(`--url "${url}" is not a URL`);
  }
  const watch = Boolean(values.watch);
  const tty = watch && Boolean(process.stdout.isTTY);
  const client = await connectLive(url, token, "cannot reach");
  try {
    // Subscribed before asking, so no event of the run is missed.
    let last = "";
    let startedAt: string | null = null;
    const show = (state: VerifyState) => {
      if (!watch || startedAt === null || state.startedAt !== startedAt) return;
      if (tty) {
        const line = state.running ? `${bar(state)} ${verifySummary(state)}` : verifySummary(state);
        process.stdout.write(`\r\x1b[2K${line}${state.running ? "" : "\n"}`);
        return;
      }
      const key = milestone(state);
      if (key === last) return;
      last = key;
      process.stdout.write(`${verifySummary(state)}\n`);
    };
    let finish: (state: VerifyState) => void = () => undefined;
    const ended = new Promise<VerifyState>((resolve) => (finish = resolve));
    const check = () => {
      const state = client.state.verify;
      show(state);
      if (startedAt !== null && state.startedAt === startedAt && !state.running) finish(state);
    };
    const unsubscribe = client.subscribe((change) => {
      if (change === "verify" || change === "snapshot" || change === "state:get") check();
    });
    const { verify } = await client.command("store:verify", values.repair ? { repair: true } : {});
    startedAt = verify.startedAt;
    // The answer is the run as it started: events before it were not shown (startedAt was unknown).
    show(verify);
    if (!tty && !watch) {
      process.stdout.write(
        `${verify.repair ? "verifying and repairing" : "verifying"} ${formatBytes(verify.bytesTotal)} in the region store…\n`,
      );
    }
    check();
    const state = await Promise.race([ended, refusedLater(client)]);
    unsubscribe();
    if (!watch) process.stdout.write(`${verifySummary(state)}\n`);
    for (const sha of state.corrupt) process.stdout.write(`corrupt ${sha}\n`);
    for (const sha of state.repaired) process.stdout.write(`repaired ${sha}\n`);
    if (state.error) process.stderr.write(`bootstream verify: ${state.error}\n`);
    return verifyOutcome(state) === "corrupt" || state.error ? 1 : 0;
  } finally {
    client.close();
  }
}
