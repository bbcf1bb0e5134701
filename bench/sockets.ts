// Benchmark (issue 6): 1,000 viewers on socket.io-client, in a separate process, against the real region
// and, in the same run, against a bare Socket.IO 4 server that sends the same payloads.
//   npx tsx bench/sockets.ts [--clients 1000] [--events 50] [--interval 200] [--warmup 5] [--repeats 3]
//                            [--no-like-region]
// Each repeat starts every server afresh and measures them in turn (the order rotates). For each:
// - own work: the same commands with no client connected, CPU per command (idle CPU taken out);
// - memory per idle connection: RSS with the clients connected and idle, minus RSS before, / clients
//   (the issue's measure); and, through the inspector, V8's used heap after a forced full GC, before
//   and after, / clients (what a connection really keeps, without garbage and unreturned heap);
// - latency: the client process sends `settings:update` (bare server: POST /emit) and times each
//   client's `settings` event from the moment it sent the command; p50/p99 over every client × event;
// - CPU per command fanned out: the server's CPU over the events (idle CPU taken out) / commands.
// The region's `settings:update` sends two events (`settings`, then `audit`); the bare server sends the
// same two. Servers run with --inspect=127.0.0.1:0 (for the GC); no inspector session is open while
// anything is timed. Figures are medians over the repeats that other sessions did not disturb.
import { fork, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { removeDir } from "../test/helpers/region";
import { gcAndHeapMiB, inspectorUrl } from "./inspector";
import {
  command,
  cpuSeconds,
  disturbed,
  killOnExit,
  machine,
  median,
  quantile,
  sleep,
  statusMiB,
  stopChild,
  table,
  verdict,
  waitForQuiet,
  withCpu,
} from "./lib";
import { startBenchRegion } from "./region-import";
import type { EventsMessage, ParentMessage } from "./socket-clients";

type Target = {
  name: string;
  url: string;
  pid: number;
  token: string;
  inspector: string;
  trigger: EventsMessage["trigger"];
  /** autoImport before the next event (each event toggles it; the clients expect the toggled value). */
  autoImport: boolean;
};

type Measure = {
  name: string;
  connectSeconds: number;
  clients: number;
  p50: number;
  p99: number;
  max: number;
  missing: number;
  commandMs: number;
  rssBeforeMiB: number;
  rssIdleMiB: number;
  heapBeforeMiB: number;
  heapIdleMiB: number;
  /** RSS right after each forced GC. */
  rssBeforeGcMiB: number;
  rssIdleGcMiB: number;
  /** CPU seconds per command with no client connected: the server's own work. */
  ownCpuPerEvent: number;
  /** CPU seconds per command with every client connected, idle CPU taken out. */
  cpuPerEvent: number;
  /** CPU share of a core while the clients sit idle (pings). */
  idleCpuShare: number;
  clientCpuPerEvent: number;
  /** Other sessions used more than 10% of the machine while latency or CPU was measured. */
  disturbed: boolean;
};

type Options = { clients: number; events: number; warmup: number; intervalMs: number; batch: number };
type EventsReply = { latencies: number[]; missing: number; commandMs: number[] };

function forkTs(file: string, args: string[], execArgv: string[] = []): ChildProcess {
  return killOnExit(
    fork(new URL(file, import.meta.url), args, {
      execArgv: [...execArgv, "--import", "tsx"],
      stdio: ["ignore", "inherit", "pipe", "ipc"],
    }),
  );
}

async function request<T>(child: ChildProcess, message: ParentMessage, reply: string): Promise<T> {
  const answer = new Promise<T>((resolve, reject) => {
    const onMessage = (m: { type: string; message?: string }) => {
      if (m.type === "error") reject(new Error(`client process: ${m.message}`));
      else if (m.type === reply) resolve(m as T);
      else return;
      child.off("message", onMessage);
    };
    child.on("message", onMessage);
  });
  child.send(message);
  return answer;
}

/** Median of a few RSS samples, 400 ms apart. */
async function sampleRss(pid: number, samples = 5): Promise<number> {
  const values: number[] = [];
  for (let i = 0; i < samples; i++) {
    values.push(await statusMiB(pid, "VmRSS"));
    await sleep(400);
  }
  return median(values);
}

async function measure(target: Target, options: Options): Promise<Measure> {
  const client = forkTs("./socket-clients.ts", []);
  client.stderr!.pipe(process.stderr);
  const commands = options.warmup + options.events;
  const events = async (): Promise<EventsReply> => {
    const reply = await request<EventsReply>(
      client,
      {
        type: "events",
        trigger: target.trigger,
        warmup: options.warmup,
        events: options.events,
        intervalMs: options.intervalMs,
        initial: target.autoImport,
      },
      "events",
    );
    if (commands % 2 === 1) target.autoImport = !target.autoImport;
    return reply;
  };
  try {
    // 1. Own work: the same commands, nobody connected (the server's idle CPU, timers and such, taken out).
    await waitForQuiet();
    const lonely0 = await cpuSeconds(target.pid);
    await sleep(3000);
    const lonelyShare = ((await cpuSeconds(target.pid)) - lonely0) / 3;
    const own = await withCpu({ server: target.pid }, events);

    // 2. Memory per idle connection: RSS as it is, then V8's heap after a forced GC.
    await waitForQuiet();
    const rssBeforeMiB = await sampleRss(target.pid);
    const heapBeforeMiB = await gcAndHeapMiB(target.inspector);
    const rssBeforeGcMiB = await sampleRss(target.pid, 3);
    const connected = await request<{ clients: number; ms: number }>(
      client,
      { type: "connect", url: target.url, token: target.token, count: options.clients, batch: options.batch },
      "connected",
    );
    await sleep(3000);
    const idle0 = await cpuSeconds(target.pid);
    const idleStart = performance.now();
    const rssIdleMiB = await sampleRss(target.pid);
    const idleCpuShare = ((await cpuSeconds(target.pid)) - idle0) / ((performance.now() - idleStart) / 1000);
    const heapIdleMiB = await gcAndHeapMiB(target.inspector);
    const rssIdleGcMiB = await sampleRss(target.pid, 3);

    // 3. Latency and CPU per event, every client connected.
    await waitForQuiet();
    const run = await withCpu({ server: target.pid, clients: client.pid! }, events);
    const { latencies } = run.value;
    return {
      name: target.name,
      connectSeconds: connected.ms / 1000,
      clients: connected.clients,
      p50: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
      max: Math.max(...latencies),
      missing: run.value.missing,
      commandMs: median(run.value.commandMs),
      rssBeforeMiB,
      rssIdleMiB,
      heapBeforeMiB,
      heapIdleMiB,
      rssBeforeGcMiB,
      rssIdleGcMiB,
      ownCpuPerEvent: Math.max(0, own.cpu["server"]! - lonelyShare * own.seconds) / commands,
      cpuPerEvent: Math.max(0, run.cpu["server"]! - idleCpuShare * run.seconds) / commands,
      idleCpuShare,
      clientCpuPerEvent: run.cpu["clients"]! / commands,
      disturbed: disturbed(run.foreign, run.seconds) || disturbed(own.foreign, own.seconds),
    };
  } finally {
    client.send({ type: "close" });
    await Promise.race([once(client, "exit"), sleep(5000)]);
    if (client.exitCode === null) await stopChild(client);
  }
}

function installed(name: string): boolean {
  try {
    createRequire(new URL("../apps/server/package.json", import.meta.url)).resolve(name);
    return true;
  } catch {
    return false;
  }
}

/** Starts the region and the bare servers of one repeat; `stop` ends them all. */
async function startTargets(
  tmp: string,
  likeRegion: boolean,
): Promise<{ targets: Target[]; stop(): Promise<void> }> {
  // 1,000 viewers from one address on one token: lift the per-address and per-token bounds (issue 12),
  // which would refuse them; the bench measures the fan-out, not the abuse limits.
  const unbounded = "100000";
  const region = await startBenchRegion(
    {
      SOCKETS_PER_ADDRESS: unbounded,
      SOCKETS_PER_TOKEN: unbounded,
      RATE_LIMIT_TOKEN: unbounded,
      RATE_LIMIT_ADDRESS: unbounded,
    },
    ["--inspect=127.0.0.1:0"],
  );
  const children: ChildProcess[] = [];
  const stop = async () => {
    for (const child of children) await stopChild(child);
    await region.stop();
    await removeDir(region.dataDir);
  };
  try {
    // The fresh region's first import fails at once (its source is unreachable); let it settle.
    for (let i = 0; i < 100; i++) {
      const state = (await (
        await fetch(`${region.url}/api/v1/state`, {
          headers: { authorization: `Bearer ${region.adminToken}` },
        })
      ).json()) as { import: { running: boolean } };
      if (!state.import.running) break;
      await sleep(100);
    }
    const { token: viewer } = await command<{ token: string }>(
      region.url,
      region.adminToken,
      "token:create",
      {
        role: "viewer",
        name: "bench-viewers",
      },
    );
    // The bare server sends the region's own snapshot on connect, so both send the same bytes.
    const snapshot = (await (
      await fetch(`${region.url}/api/v1/state`, { headers: { authorization: `Bearer ${viewer}` } })
    ).json()) as Record<string, unknown>;
    delete snapshot["seq"];
    const snapshotFile = join(tmp, "snapshot.json");
    await writeFile(snapshotFile, JSON.stringify(snapshot));

    const bare = async (name: string, args: string[]): Promise<Target> => {
      const child = forkTs(
        "./bare-socketio-server.ts",
        ["--snapshot", snapshotFile, ...args],
        ["--inspect=127.0.0.1:0"],
      );
      children.push(child);
      let stderr = "";
      child.stderr!.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
      const [message] = (await once(child, "message")) as [{ url: string }];
      const inspector = inspectorUrl(stderr);
      if (!inspector) throw new Error(`bare server printed no inspector URL:\n${stderr}`);
      return {
        name,
        url: message.url,
        pid: child.pid!,
        token: "none",
        inspector,
        trigger: { url: `${message.url}/emit`, headers: {}, body: false, query: true },
        autoImport: true,
      };
    };
    const regionInspector = inspectorUrl(region.output());
    if (!regionInspector) throw new Error(`region printed no inspector URL:\n${region.output()}`);
    const targets: Target[] = [
      {
        name: "region",
        url: region.url,
        pid: region.child.pid!,
        token: viewer,
        inspector: regionInspector,
        trigger: {
          url: `${region.url}/api/v1/commands/settings:update`,
          headers: { authorization: `Bearer ${region.adminToken}` },
          body: true,
          query: false,
        },
        autoImport: true,
      },
      await bare("bare Socket.IO", []),
    ];
    if (likeRegion) targets.push(await bare("bare, region's options", ["--like-region"]));
    return { targets, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      clients: { type: "string", default: "1000" },
      events: { type: "string", default: "50" },
      warmup: { type: "string", default: "5" },
      interval: { type: "string", default: "200" },
      batch: { type: "string", default: "50" },
      repeats: { type: "string", default: "3" },
      "no-like-region": { type: "boolean", default: false },
    },
  });
  const options: Options = {
    clients: Math.max(1, Math.min(5000, Number(values.clients))),
    events: Math.max(1, Math.min(500, Number(values.events))),
    warmup: Math.max(0, Math.min(50, Number(values.warmup))),
    intervalMs: Math.max(10, Math.min(5000, Number(values.interval))),
    batch: Math.max(1, Math.min(500, Number(values.batch))),
  };
  const repeats = Math.max(1, Math.min(9, Number(values.repeats)));
  console.log(
    `${options.clients} clients (websocket transport, one process), ${options.events} events ` +
      `(+${options.warmup} warm-up), at most one every ${options.intervalMs} ms, ${repeats} repeat(s); ${machine()}`,
  );
  console.log(
    `bufferutil: ${installed("bufferutil") ? "installed" : "not installed"}; utf-8-validate: ` +
      `${installed("utf-8-validate") ? "installed" : "not installed"} (ws uses buffer.isUtf8 on this Node either way)\n`,
  );

  const tmp = await mkdtemp(join(tmpdir(), "bootstream-bench-sockets-"));
  const byName = new Map<string, Measure[]>();
  try {
    for (let repeat = 0; repeat < repeats; repeat++) {
      const { targets, stop } = await startTargets(tmp, !values["no-like-region"]);
      try {
        // Rotate the order, so that no server is always measured first (or last).
        const order = targets.map((_, i) => targets[(i + repeat) % targets.length]!);
        for (const target of order) {
          const m = await measure(target, options);
          byName.set(m.name, [...(byName.get(m.name) ?? []), m]);
          console.log(
            `repeat ${repeat + 1}, ${m.name}${m.disturbed ? " (disturbed by other sessions)" : ""}: ` +
              `${m.clients} connected in ${m.connectSeconds.toFixed(1)} s; p50 ${m.p50.toFixed(1)} ms, ` +
              `p99 ${m.p99.toFixed(1)} ms, missing ${m.missing}; RSS ${m.rssBeforeMiB.toFixed(0)} → ${m.rssIdleMiB.toFixed(0)} MiB, ` +
              `heap after GC ${m.heapBeforeMiB.toFixed(1)} → ${m.heapIdleMiB.toFixed(1)} MiB; ` +
              `CPU/command ${(m.ownCpuPerEvent * 1e3).toFixed(2)} ms alone, ${(m.cpuPerEvent * 1e3).toFixed(2)} ms with clients`,
          );
        }
      } finally {
        await stop();
      }
    }

    const names = [...byName.keys()];
    // Medians over the undisturbed repeats (over all of them when every one was disturbed).
    const chosen = new Map(
      names.map((name) => {
        const all = byName.get(name)!;
        const clean = all.filter((m) => !m.disturbed);
        return [name, clean.length ? clean : all];
      }),
    );
    const med = (name: string, f: (m: Measure) => number) => median(chosen.get(name)!.map(f));
    const col = (f: (m: Measure) => number, format: (x: number) => string) =>
      names.map((name) => format(med(name, f)));
    const perConn = (delta: (m: Measure) => number) => (m: Measure) => (delta(m) * 1024) / m.clients;
    const rssPerConn = perConn((m) => m.rssIdleMiB - m.rssBeforeMiB);
    const heapPerConn = perConn((m) => m.heapIdleMiB - m.heapBeforeMiB);
    const rssGcPerConn = perConn((m) => m.rssIdleGcMiB - m.rssBeforeGcMiB);
    const ms = (x: number) => `${x.toFixed(1)} ms`;
    const us = (s: number) => `${(s * 1e6).toFixed(0)} µs`;
    const kib = (x: number) => `${x.toFixed(1)} KiB`;
    const used = names.map((n) => {
      const clean = byName.get(n)!.filter((m) => !m.disturbed).length;
      return `${n}: ${clean ? `${clean} undisturbed` : `all ${byName.get(n)!.length}, every one disturbed`}`;
    });
    console.log(
      `\n${options.clients} idle viewers, ${options.events} events; medians over repeats (${used.join("; ")})\n`,
    );
    console.log(
      table(
        ["", ...names],
        [
          ["latency p50 (command sent → `settings` at a client)", ...col((m) => m.p50, ms)],
          ["latency p99", ...col((m) => m.p99, ms)],
          ["latency max", ...col((m) => m.max, ms)],
          ["command answered (HTTP), median", ...col((m) => m.commandMs, ms)],
          ["events missed", ...col((m) => m.missing, String)],
          [
            "RSS before connecting",
            ...col(
              (m) => m.rssBeforeMiB,
              (x) => `${x.toFixed(0)} MiB`,
            ),
          ],
          ["memory per idle connection (RSS delta / clients)", ...col(rssPerConn, kib)],
          ["RSS delta / clients, each measured after a full GC", ...col(rssGcPerConn, kib)],
          ["V8 heap kept per connection (after a full GC)", ...col(heapPerConn, kib)],
          ["CPU per command, no clients (own work)", ...col((m) => m.ownCpuPerEvent, us)],
          [`CPU per command, ${options.clients} clients`, ...col((m) => m.cpuPerEvent, us)],
          [
            "fan-out CPU per command per client",
            ...col((m) => (m.cpuPerEvent - m.ownCpuPerEvent) / Math.max(1, m.clients), us),
          ],
          [
            "idle CPU with the clients connected",
            ...col(
              (m) => 100 * m.idleCpuShare,
              (x) => `${x.toFixed(1)}% of a core`,
            ),
          ],
          ["client process CPU per command", ...col((m) => m.clientCpuPerEvent, us)],
        ],
      ),
    );
    const [regionName, bareName] = names as [string, string];
    const p99Ratio = med(regionName, (m) => m.p99) / med(bareName, (m) => m.p99);
    const memRatio = med(regionName, rssPerConn) / med(bareName, rssPerConn);
    const heapRatio = med(regionName, heapPerConn) / med(bareName, heapPerConn);
    const rssGcRatio = med(regionName, rssGcPerConn) / med(bareName, rssGcPerConn);
    console.log(
      `\nregion p99 / bare p99 = ${p99Ratio.toFixed(2)} (target ≤ 1.2: ${verdict(p99Ratio <= 1.2)}); ` +
        `memory per idle connection region / bare = ${memRatio.toFixed(2)} (target ≤ 1.3: ${verdict(memRatio <= 1.3)}); ` +
        `after a full GC: RSS ${rssGcRatio.toFixed(2)}, V8 heap kept ${heapRatio.toFixed(2)}`,
    );
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
