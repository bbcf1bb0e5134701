import { existsSync } from "node:fs";
import Koa from "koa";
import Router from "@koa/router";
import { bodyParser } from "@koa/bodyparser";
import send from "koa-send";
import { CommandError, HTTP_STATUS, type PresenceUser } from "@bootstream/protocol";
import type { RegionContext } from "./context";
import type { CommandRunner } from "./commands/dispatch";
import type { Metrics } from "./metrics";
import { MAX_PAYLOAD_BYTES } from "./sockets";
import { clientAddress } from "./rate-limit";
import type { ClientLimits, Refusal } from "./client-limits";

import { WEB_DIST } from "../paths";

export { WEB_DIST };

type State = { user?: PresenceUser };

const errorBody = (code: CommandError["code"], message: string) => ({
  ok: false,
  error: new CommandError(code, message).toBody(),
});

function bearer(header: string | undefined): string | null {
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? "");
  return match?.[1] ?? null;
}

/**
 * Sent on every answer. The dashboard loads only its own files: the built page has no inline script
 * or style element, its favicon is a file (a `data:` one would be refused), Svelte sets styles
 * through the CSSOM (which `style-src` does not govern) and Socket.IO connects to the same origin
 * (`'self'` covers ws:/wss: there). test/e2e/csp.test.ts loads it and asserts no violation.
 */
export const SECURITY_HEADERS: Record<string, string> = {
  "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
  "X-Frame-Options": "DENY",
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
};

export function createHttpApp(
  region: RegionContext,
  commands: CommandRunner,
  metrics: Metrics,
  files: Koa.Middleware,
  limits: ClientLimits,
): Koa<State> {
  const app = new Koa<State>();
  app.proxy = false;
  // Koa would print stack traces for errors we already answer; the error middleware logs what matters.
  app.silent = true;

  app.use(async (ctx, next) => {
    // Every answer, errors included: the page holding an admin token is never framed (clickjacking),
    // nothing is type-sniffed, and no URL (a `#token=` link) leaks through a Referer.
    ctx.set(SECURITY_HEADERS);
    const end = metrics.httpDuration.startTimer();
    try {
      await next();
      // The router set 405 (and Allow) after the fallback had answered "no route": say which method.
      if (ctx.status === 405) {
        ctx.body = errorBody(
          "invalid",
          `${ctx.method} is not allowed on ${ctx.path}: use ${ctx.response.get("Allow") || "another method"}`,
        );
      }
    } catch (error) {
      const status = (error as { status?: number }).status ?? 500;
      if (status >= 500) region.log.error({ err: error, path: ctx.path }, "http request failed");
      ctx.status = status;
      ctx.body = errorBody(
        status === 413 ? "invalid" : status >= 500 ? "internal" : "invalid",
        status === 413
          ? `body larger than ${MAX_PAYLOAD_BYTES} bytes`
          : status >= 500
            ? "internal error; see the region log"
            : (error as Error).message,
      );
    } finally {
      const route =
        (ctx as { _matchedRoute?: string })._matchedRoute ??
        (ctx.path.startsWith("/assets/") ? "/assets" : "other");
      metrics.httpRequests.inc({ method: ctx.method, route, status: String(ctx.status) });
      end({ route });
    }
  });

  const router = new Router<State>();
  // The same buckets as sockets (per token and per address): a script in a loop cannot starve
  // everyone else, over HTTP or over its sockets.
  const tooMany = (ctx: Koa.Context, refusal: Refusal) => {
    ctx.status = 429;
    ctx.set("Retry-After", "1");
    ctx.body = errorBody(refusal.code, refusal.message);
  };

  router.get("/healthz", async (ctx) => {
    try {
      await region.db.ping();
      region.health.pingSucceeded();
    } catch (error) {
      region.log.warn({ err: error }, "health check: database does not answer");
      region.health.pingFailed(error);
    }
    const health = region.health.state();
    ctx.status = health.status === "ok" ? 200 : 503;
    ctx.set("Cache-Control", "no-store");
    ctx.body = health;
  });

  router.get("/metrics", async (ctx) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });

  router.get("/files/:sha256", files);
  router.head("/files/:sha256", files);

  const api = new Router<State>({ prefix: "/api/v1" });
  api.use(async (ctx, next) => {
    const address = clientAddress(ctx.req.socket.remoteAddress);
    const attempt = limits.attempt(address);
    if (attempt) return tooMany(ctx, attempt);
    const sent = bearer(ctx.get("authorization"));
    const user = await region.tokens.authenticate(sent);
    if (!user) {
      limits.refusals.refused("unauthorized", address, "API request refused: unauthorized");
      ctx.status = 401;
      ctx.set("WWW-Authenticate", 'Bearer realm="bootstream"');
      ctx.body = errorBody(
        "unauthorized",
        sent === null
          ? "send an API token as 'Authorization: Bearer TOKEN'"
          : "token not accepted (unknown or revoked)",
      );
      return;
    }
    // A token's requests draw on its bucket as its sockets' commands do.
    const refusal = limits.command(null, user, address);
    if (refusal) return tooMany(ctx, refusal);
    ctx.state.user = user;
    await next();
  });
  api.get("/state", async (ctx) => {
    ctx.body = { ...region.bus.live.snapshot(ctx.state.user!), seq: region.bus.currentSeq };
  });
  api.post(
    "/commands/:name",
    async (ctx, next) => {
      // A body that is not JSON (`curl -d` sends it as a form) would be read as no payload at all,
      // and the command run without what was sent: refuse it, saying how to send it. An empty body
      // is an empty payload whatever its type (is() is null without a body, but counts length 0 as one).
      if (ctx.request.length === 0 || ctx.is("json") !== false) return next();
      ctx.status = 400;
      ctx.body = errorBody(
        "invalid",
        `the body is ${ctx.get("content-type") || "of no content type"}, not JSON: send it with 'Content-Type: application/json'`,
      );
    },
    bodyParser({
      enableTypes: ["json"],
      jsonLimit: MAX_PAYLOAD_BYTES,
      encoding: "utf-8",
      onError: (error, ctx) => {
        const status = (error as { status?: number }).status;
        if (status === 413) ctx.throw(413, `body larger than ${MAX_PAYLOAD_BYTES} bytes`);
        ctx.throw(400, "the body is not a JSON object (the command's payload, {} for none)");
      },
    }),
    async (ctx) => {
      // An empty body means an empty payload, so `curl -X POST …/import:start` just works.
      const payload = (ctx.request as { body?: unknown }).body ?? {};
      const user = ctx.state.user!;
      const answer = await commands.run(ctx.params.name ?? "", payload, user);
      ctx.status = answer.ok ? 200 : HTTP_STATUS[answer.error.code];
      ctx.body = answer;
    },
  );
  router.use(api.routes(), api.allowedMethods());

  app.use(router.routes());
  app.use(router.allowedMethods());
  app.use(dashboard(region));
  return app;
}

/** The built dashboard: hashed assets cached for a year, every other GET falls back to index.html. */
function dashboard(region: RegionContext): Koa.Middleware<State> {
  const built = existsSync(`${WEB_DIST}/index.html`);
  if (!built) region.log.warn({ dir: WEB_DIST }, "dashboard not built (npm run build); / answers 503");
  return async (ctx) => {
    const reserved = /^\/(api|files|socket\.io|healthz|metrics)(\/|$)/.test(ctx.path);
    if (reserved || (ctx.method !== "GET" && ctx.method !== "HEAD")) {
      ctx.status = 404;
      ctx.body = errorBody("not-found", `no route ${ctx.method} ${ctx.path}`);
      return;
    }
    if (!built) {
      ctx.status = 503;
      ctx.body = errorBody("internal", "the dashboard is not built; run `npm run build`");
      return;
    }
    if (ctx.path.startsWith("/assets/")) {
      const served = await send(ctx, ctx.path, {
        root: WEB_DIST,
        immutable: true,
        maxage: 365 * 24 * 3600 * 1000,
      }).catch(() => null);
      if (!served) {
        ctx.status = 404;
        ctx.body = errorBody("not-found", `no asset ${ctx.path}`);
      }
      return;
    }
    const file =
      ctx.path !== "/" && existsSync(`${WEB_DIST}${ctx.path}`) && !ctx.path.includes("..")
        ? ctx.path
        : "/index.html";
    await send(ctx, file, { root: WEB_DIST });
    // index.html names the hashed assets: it must always be revalidated.
    if (file === "/index.html") ctx.set("Cache-Control", "no-cache");
  };
}
