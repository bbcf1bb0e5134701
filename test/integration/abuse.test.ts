import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { io } from "socket.io-client";
import WebSocket from "ws";
import type { Manifest, RackReport } from "@bootstream/protocol";
import { TEST_RACK_SECRET, removeDir, startRegion, type RegionProcess } from "../helpers/region";
import { connect, post, send, type TestSocket } from "../helpers/sockets";

// Hostile clients against a real region (issue 12): every flood meets a bound, the region keeps
// answering. Speed under the flood is a bench figure (bench/flood.ts), not asserted here.

type Answer = { ok: boolean; error?: { code: string; message: string } };

async function healthz(url: string): Promise<number> {
  return (await fetch(`${url}/healthz`)).status;
}

/** Resolves with the connect_error of a socket the region refuses (message and data.message). */
function refusedConnect(
  url: string,
  token: string,
): Promise<{ message: string; data?: { message?: string } }> {
  return connect(url, token).then(
    ({ socket }) => {
      socket.close();
      throw new Error("the region accepted a socket it should have refused");
    },
    (error: Error & { data?: { message?: string } }) => error,
  );
}

/** A raw engine.io connection (a WebSocket that never says which namespace it wants). */
function rawEngine(url: string): Promise<{ ws: WebSocket; closed: Promise<void> } | { refused: number }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${url.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`);
    const closed = new Promise<void>((done) => ws.once("close", () => done()));
    ws.once("open", () => resolve({ ws, closed }));
    ws.once("unexpected-response", (_req, res) => {
      res.resume();
      resolve({ refused: res.statusCode ?? 0 });
    });
    ws.on("error", () => undefined);
  });
}

function logLines(region: RegionProcess): { msg: string; [key: string]: unknown }[] {
  return region
    .output()
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line) as { msg: string });
}

async function until<T>(what: string, attempt: () => Promise<T | undefined>, tries = 2000): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const value = await attempt();
    if (value !== undefined) return value;
  }
  throw new Error(`${what}: not seen in ${tries} tries`);
}

describe("hostile clients", () => {
  describe("one viewer token flooding from many sockets", () => {
    let region: RegionProcess;
    let viewer: string;
    const sockets: TestSocket[] = [];

    beforeAll(async () => {
      region = await startRegion({ env: { SOCKETS_PER_TOKEN: "40" } });
      const created = await post(region.url, region.adminToken, "token:create", {
        role: "viewer",
        name: "flood",
      });
      viewer = created.json.token as string;
    });
    afterAll(async () => {
      for (const socket of sockets) socket.close();
      await region?.stop();
      if (region) await removeDir(region.dataDir);
    });

    it("refuses sockets over the cap per token, and a slot frees when a socket leaves", async () => {
      for (let i = 0; i < 40; i++) sockets.push((await connect(region.url, viewer)).socket);
      const refused = await refusedConnect(region.url, viewer);
      expect(refused.message).toBe("rate-limited");
      expect(refused.data?.message).toContain('token "flood" already has 40 open connections');
      // Another token is not held back by this one's cap.
      const { socket: admin } = await connect(region.url, region.adminToken);
      admin.close();
      // One leaves: one more may come.
      const gone = new Promise((resolve) => sockets[0]!.once("disconnect", resolve));
      sockets.shift()!.close();
      await gone;
      sockets.push(
        await until("a freed slot", async () => {
          const attempt = await connect(region.url, viewer).catch(() => undefined);
          return attempt?.socket;
        }),
      );
    });

    it("answers a flood rate-limited, per token across its sockets and HTTP, while others are served", async () => {
      let flooding = true;
      const codes = new Map<string, number>();
      let limitedMessage = "";
      const floods = sockets.map(async (socket) => {
        while (flooding) {
          const answer = (await send(socket, "audit:list", { limit: 100 })) as Answer;
          const code = answer.ok ? "ok" : answer.error!.code;
          codes.set(code, (codes.get(code) ?? 0) + 1);
          if (code === "rate-limited") limitedMessage = answer.error!.message;
        }
      });
      try {
        // The same token over HTTP draws on the same bucket.
        const http = await until("429 over HTTP for the flooding token", async () => {
          const response = await fetch(`${region.url}/api/v1/state`, {
            headers: { authorization: `Bearer ${viewer}` },
          });
          const body = (await response.json()) as Answer;
          return response.status === 429 ? body : undefined;
        });
        expect(http.error).toMatchObject({ code: "rate-limited" });
        expect(http.error!.message).toContain('token "flood"');
        // Everyone else is served, and /healthz answers, during the flood.
        const { socket: admin } = await connect(region.url, region.adminToken);
        for (let i = 0; i < 10; i++) {
          expect(await send(admin, "state:get", {})).toMatchObject({ ok: true });
          expect(await healthz(region.url)).toBe(200);
        }
        admin.close();
      } finally {
        flooding = false;
        await Promise.all(floods);
      }
      expect(codes.get("rate-limited")).toBeGreaterThan(0);
      expect(codes.get("ok")).toBeGreaterThan(0);
      expect([...codes.keys()].sort()).toEqual(["ok", "rate-limited"]);
      expect(limitedMessage).toMatch(/with token "flood"|on this connection/);
    });

    it("pages audit:list with a small maximum", async () => {
      // A token of its own: the flood above emptied the flooding token's bucket.
      const created = await post(region.url, region.adminToken, "token:create", {
        role: "viewer",
        name: "pager",
      });
      const { socket } = await connect(region.url, created.json.token as string);
      sockets.push(socket);
      const tooMany = (await send(socket, "audit:list", { limit: 101 })) as Answer;
      expect(tooMany.error).toMatchObject({ code: "invalid" });
      expect(tooMany.error!.message).toContain("at most 100");
      for (const name of ["a", "b", "c", "d", "e"])
        await post(region.url, region.adminToken, "token:create", { role: "viewer", name: `page-${name}` });
      const seen: string[] = [];
      let before: string | undefined;
      for (;;) {
        const page = await send(socket, "audit:list", { limit: 2, ...(before ? { before } : {}) });
        if (!page.ok) throw new Error(page.error.message);
        expect(page.entries.length).toBeLessThanOrEqual(2);
        seen.push(...page.entries.map((e) => e.detail));
        if (!page.next) break;
        before = page.next;
      }
      // Newest first, each entry once, down to the first token created.
      expect(seen.slice(0, 5)).toEqual(["e", "d", "c", "b", "a"].map((n) => `viewer token "page-${n}"`));
      expect(seen.slice(5)).toContain('viewer token "pager"');
      expect(seen).toContain('viewer token "flood"');
      expect(new Set(seen).size).toBe(seen.length);
      const bad = (await send(socket, "audit:list", { before: "../1" } as never)) as Answer;
      expect(bad.error).toMatchObject({ code: "invalid" });
    });

    it("rate-limits the reports of one rack connection, and applies none it refused", async () => {
      const rack = io(`${region.url}/rack`, {
        auth: { name: "forged", secret: TEST_RACK_SECRET },
        transports: ["websocket"],
        reconnection: false,
        forceNew: true,
      });
      try {
        const manifest = await new Promise<Manifest>((resolve, reject) => {
          rack.once("manifest", resolve);
          rack.once("connect_error", reject);
        });
        const report = (i: number): RackReport => ({
          inventory: [],
          generation: manifest.generation,
          syncing: false,
          progress: null,
          lastSync: null,
          error: `forged ${i}`,
        });
        const answers = await Promise.all(
          Array.from(
            { length: 60 },
            (_, i) =>
              new Promise<{ ok: boolean; error?: string }>((resolve) =>
                rack.emit("report", report(i), resolve),
              ),
          ),
        );
        const limited = answers.filter((a) => a.error === "rate-limited").length;
        expect(answers.filter((a) => a.ok).length).toBeLessThanOrEqual(12);
        expect(limited).toBeGreaterThanOrEqual(48);
        expect(await healthz(region.url)).toBe(200);
      } finally {
        rack.close();
      }
    });
  });

  describe("one address, unauthenticated", () => {
    let region: RegionProcess;
    let started = 0;

    beforeAll(async () => {
      started = Date.now();
      region = await startRegion({ env: { RATE_LIMIT_ADDRESS: "5", SOCKETS_PER_ADDRESS: "20" } });
    });
    afterAll(async () => {
      await region?.stop();
      if (region) await removeDir(region.dataDir);
    });

    it("limits an address over HTTP whichever token it uses, and without one", async () => {
      const created = await post(region.url, region.adminToken, "token:create", {
        role: "viewer",
        name: "other",
      });
      const other = created.json.token as string;
      const get = (token: string | null) =>
        fetch(`${region.url}/api/v1/state`, {
          headers: token ? { authorization: `Bearer ${token}` } : {},
        }).then(async (response) => ({ status: response.status, body: (await response.json()) as Answer }));
      const limited = await until("429 for the address", async () => {
        const answers = await Promise.all([get(region.adminToken), get(other), get(null), get("wrong")]);
        return answers.every((a) => a.status === 429) ? answers : undefined;
      });
      for (const { body } of limited) {
        expect(body.error).toMatchObject({ code: "rate-limited" });
        expect(body.error!.message).toContain("from 127.0.0.1");
      }
      // Socket handshakes draw on the same bucket.
      const socketRefused = await until("a socket refused for the address", async () => {
        const error = await refusedConnect(region.url, region.adminToken).catch(() => undefined);
        return error?.message === "rate-limited" ? error : undefined;
      });
      expect(socketRefused.data?.message).toContain("from 127.0.0.1");
      expect(await healthz(region.url)).toBe(200);
    });

    it("refuses engine.io connections over the cap and closes those that never authenticate", async () => {
      const open: { ws: WebSocket; closed: Promise<void> }[] = [];
      for (let i = 0; i < 20; i++) {
        const raw = await rawEngine(region.url);
        if (!("ws" in raw)) throw new Error(`connection ${i + 1} refused with ${raw.refused}`);
        open.push(raw);
      }
      expect(await rawEngine(region.url)).toEqual({ refused: 400 });
      const polling = await fetch(`${region.url}/socket.io/?EIO=4&transport=polling`);
      expect(polling.status).toBe(403);
      expect(await polling.text()).toContain("more than 20 open connections from 127.0.0.1");
      expect(await healthz(region.url)).toBe(200);
      // None of them says which namespace it wants: the region closes every one (the handshake
      // timeout), and then the address may connect again.
      await Promise.all(open.map((raw) => raw.closed));
      const again = await until(
        "a connection accepted again",
        async () => {
          const raw = await rawEngine(region.url);
          return "ws" in raw ? raw : undefined;
        },
        100,
      );
      again.ws.close();
    });

    it("logs refusals as counts, not a line each", async () => {
      await Promise.all(
        Array.from({ length: 50 }, () => refusedConnect(region.url, "not-a-token").catch(() => undefined)),
      );
      // The counts come in one line per reason per window (10 s).
      const summary = await until(
        "a summary line",
        async () => {
          const line = logLines(region).find((l) => /^refused \d+ more in/.test(l.msg));
          if (!line) await new Promise((resolve) => setTimeout(resolve, 200));
          return line;
        },
        150,
      );
      expect(summary.total).toBeGreaterThan(0);
      const refusalLines = logLines(region).filter((l) => /refused/.test(l.msg));
      // Five reasons at most here (rate-limited, unauthorized, connections per address, …).
      const windows = Math.ceil((Date.now() - started) / 10_000) + 3;
      expect(refusalLines.length).toBeLessThanOrEqual(5 * windows);
      // Well under one per refusal: the first test alone was refused hundreds of times.
      expect(refusalLines.length).toBeLessThan(25);
    });
  });
});
