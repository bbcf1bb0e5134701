// Benchmark (issue 12): /healthz latency while one viewer token floods the region, against /healthz
// measured idle in the same run.
//   npx tsx bench/flood.ts [--sockets 100] [--raw 140] [--http 20] [--seconds 40] [--idle 200]
// A real region (the compiled bin, default limits) is started afresh. Idle: `--idle` sequential
// GET /healthz, 20 ms apart. Then a load process (forked, so its CPU is not the measurer's) holds:
// - `--sockets` Socket.IO sockets on one viewer token (the per-token cap is 100), each looping
//   `audit:list {limit:100}` as fast as its acks come (most answered `rate-limited`);
// - `--raw` raw engine.io WebSockets that never join a namespace (closed by the region after 5 s,
//   reopened at once), so unauthenticated connections stay near the per-address cap (256 in all);
// - `--http` concurrent loops of GET /api/v1/state, half with the viewer token, half with a wrong one.
// After 5 s of warm-up, /healthz is measured for `--seconds`, 50 ms apart. Goal: p95 under 100 ms.
import { fork } from "node:child_process";
import { once } from "node:events";
import { parseArgs } from "node:util";
import { io, type Socket } from "socket.io-client";
import WebSocket from "ws";
import { removeDir, startRegion } from "../test/helpers/region";
import { command, killOnExit, machine, quantile, sleep, table, verdict, waitForQuiet } from "./lib";

type Held = {
  commands: number;
  ok: number;
  limited: number;
  refusedSockets: number;
  socketsOpen: number;
  rawOpen: number;
  rawOpened: number;
  rawRefused: number;
  http: number;
  http429: number;
  http401: number;
};

const { values } = parseArgs({
  options: {
    load: { type: "string" },
    sockets: { type: "string", default: "100" },
    raw: { type: "string", default: "140" },
    http: { type: "string", default: "20" },
    seconds: { type: "string", default: "40" },
    idle: { type: "string", default: "200" },
  },
});

if (values.load) await load(JSON.parse(values.load) as LoadPlan);
else await main();

type LoadPlan = { url: string; token: string; sockets: number; raw: number; http: number };

/** The load process: holds the flood until told to stop, then reports what it held. */
async function load(plan: LoadPlan): Promise<void> {
  const held: Held = {
    commands: 0,
    ok: 0,
    limited: 0,
    refusedSockets: 0,
    socketsOpen: 0,
    rawOpen: 0,
    rawOpened: 0,
    rawRefused: 0,
    http: 0,
    http429: 0,
    http401: 0,
  };
  let running = true;
  const sockets: Socket[] = [];
  const loops: Promise<void>[] = [];

  for (let i = 0; i < plan.sockets; i++) {
    const socket = io(plan.url, {
      auth: { token: plan.token },
      transports: ["websocket"],
      reconnection: false,
    });
    sockets.push(socket);
    socket.on("connect_error", () => held.refusedSockets++);
    socket.on("connect", () => {
      held.socketsOpen++;
      loops.push(
        (async () => {
          while (running && socket.connected) {
            const answer = (await socket
              .timeout(10_000)
              .emitWithAck("audit:list", { limit: 100 })
              .catch(() => ({ ok: false, error: { code: "timeout" } }))) as {
              ok: boolean;
              error?: { code: string };
            };
            held.commands++;
            if (answer.ok) held.ok++;
            else if (answer.error?.code === "rate-limited") held.limited++;
          }
        })(),
      );
    });
  }

  const ws = plan.url.replace(/^http/, "ws") + "/socket.io/?EIO=4&transport=websocket";
  for (let i = 0; i < plan.raw; i++) {
    loops.push(
      (async () => {
        while (running) {
          const raw = new WebSocket(ws);
          raw.on("error", () => undefined);
          raw.once("open", () => {
            held.rawOpened++;
            held.rawOpen++;
            raw.once("close", () => held.rawOpen--);
          });
          raw.once("unexpected-response", (_req, res) => {
            res.resume();
            held.rawRefused++;
          });
          await once(raw, "close").catch(() => undefined);
          if (running) await sleep(100);
        }
      })(),
    );
  }

  for (let i = 0; i < plan.http; i++) {
    const token = i % 2 ? plan.token : "not-a-token-at-all";
    loops.push(
      (async () => {
        while (running) {
          const response = await fetch(`${plan.url}/api/v1/state`, {
            headers: { authorization: `Bearer ${token}` },
          }).catch(() => null);
          await response?.arrayBuffer();
          held.http++;
          if (response?.status === 429) held.http429++;
          if (response?.status === 401) held.http401++;
        }
      })(),
    );
  }

  process.send!({ ready: true });
  await once(process, "message");
  const snapshot = { ...held };
  running = false;
  for (const socket of sockets) socket.close();
  process.send!({ held: snapshot });
  await Promise.race([Promise.allSettled(loops), sleep(10_000)]);
  process.exit(0);
}

/** Sequential GET /healthz, `gapMs` apart: `count` of them, or as many as fit in `forMs`. */
async function healthzTimes(url: string, count: number, gapMs: number, forMs = Infinity): Promise<number[]> {
  const times: number[] = [];
  const end = performance.now() + forMs;
  for (let i = 0; i < count && performance.now() < end; i++) {
    const started = performance.now();
    const response = await fetch(`${url}/healthz`);
    await response.arrayBuffer();
    if (response.status !== 200) throw new Error(`/healthz answered ${response.status}`);
    times.push(performance.now() - started);
    await sleep(gapMs);
  }
  return times;
}

async function main(): Promise<void> {
  const sockets = Number(values.sockets);
  const raw = Number(values.raw);
  const http = Number(values.http);
  const seconds = Number(values.seconds);
  console.log(machine());
  await waitForQuiet(20_000);
  const region = await startRegion({ startTimeoutMs: 120_000 });
  try {
    const { token } = await command<{ token: string }>(region.url, region.adminToken, "token:create", {
      role: "viewer",
      name: "flood",
    });
    // Something for audit:list to read.
    for (let i = 0; i < 50; i++)
      await command(region.url, region.adminToken, "settings:update", { autoImport: i % 2 === 0 });

    await healthzTimes(region.url, 20, 20);
    const idle = await healthzTimes(region.url, Number(values.idle), 20);

    const child = killOnExit(
      fork(
        new URL(import.meta.url),
        ["--load", JSON.stringify({ url: region.url, token, sockets, raw, http })],
        {
          execArgv: ["--import", "tsx"],
          stdio: ["ignore", "inherit", "inherit", "ipc"],
        },
      ),
    );
    await once(child, "message");
    const loadStarted = performance.now();
    await sleep(5_000);
    const flooded = await healthzTimes(region.url, Infinity, 50, seconds * 1000);
    child.send({ stop: true });
    const span = (performance.now() - loadStarted) / 1000;
    const [{ held }] = (await once(child, "message")) as [{ held: Held }];
    await once(child, "exit");

    const row = (name: string, t: number[]) => [
      name,
      String(t.length),
      quantile(t, 0.5).toFixed(1),
      quantile(t, 0.95).toFixed(1),
      quantile(t, 0.99).toFixed(1),
      Math.max(...t).toFixed(1),
    ];
    console.log(`\n/healthz latency, ms (${seconds} s under load, warm-up 5 s)\n`);
    console.log(
      table(["phase", "requests", "p50", "p95", "p99", "max"], [row("idle", idle), row("flood", flooded)]),
    );
    const p95 = quantile(flooded, 0.95);
    console.log(
      `\np95 under the flood / idle p95: ${(p95 / quantile(idle, 0.95)).toFixed(1)}×; goal p95 < 100 ms: ${verdict(p95 < 100)}`,
    );
    console.log(
      `\nload held over ${span.toFixed(0)} s: ${held.socketsOpen} viewer sockets open (${held.refusedSockets} refused), ` +
        `${held.commands} audit:list (${held.ok} answered, ${held.limited} rate-limited; ` +
        `${(held.commands / span).toFixed(0)}/s); raw engine.io: ${held.rawOpened} opened ` +
        `(${held.rawOpen} open at the end, ${held.rawRefused} refused); HTTP: ${held.http} requests ` +
        `(${(held.http / span).toFixed(0)}/s; ${held.http429} 429, ${held.http401} 401)`,
    );
  } finally {
    await region.stop();
    await removeDir(region.dataDir);
  }
}
