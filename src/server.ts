/**
 * Composition root: builds stores, identity, audit, the turn executor and the HTTP app from a
 * validated `Config`, and starts Bun's server. `startServer` is what `turnkey serve` and the
 * end-to-end tests call; `stop()` ends every live turn (with full teardown) before closing.
 */
import { mkdirSync } from "node:fs";
import type { Config } from "./config.ts";
import { dataPath, publicBaseUrl, redactConfig } from "./config.ts";
import { createApp } from "./http/app.ts";
import type { AppDeps } from "./http/context.ts";
import { createLogger, type Logger } from "./log.ts";
import { DevIssuer } from "./identity/dev-issuer.ts";
import { ConfigError } from "./errors.ts";
import { JwtAuthenticator } from "./identity/jwt.ts";
import { discoverIssuer, memoiseDiscovery } from "./identity/oidc-discovery.ts";
import { TurnTokenIssuer } from "./identity/turn-token.ts";
import { createAuthenticator, type BearerAuthenticator } from "./identity/authenticate.ts";
import type { SessionStore } from "./sessions/types.ts";
import type { CredentialStore } from "./credentials/types.ts";
import { BotTokenAuthenticator } from "./identity/bot-tokens.ts";
import { ForwardedHeadersAuthenticator, hostAddresses } from "./identity/forwarded.ts";
import { createAuditSink } from "./audit/audit.ts";
import { openEmbeddedStores } from "./store/index.ts";
import { ActiveRunMap } from "./sessions/active-runs.ts";
import { SessionEventBus } from "./sessions/event-bus.ts";
import { SessionEventLog } from "./sessions/event-log.ts";
import { TurnService } from "./runner/turn-service.ts";
import { createTurnExecutor } from "./runner/select.ts";
import { TurnJournal } from "./runner/turn-journal.ts";
import { lockDataDir } from "./store/data-dir-lock.ts";
import { openRunnerUidPool } from "./runner/runner-uids.ts";
import type { TurnExecutor } from "./runner/types.ts";
import type { JWTVerifyGetKey } from "jose";
import type { BaseEvent } from "@ag-ui/core";
import { createGatewayMetrics } from "./metrics/registry.ts";

/** The stores and backend-specific authenticators of the configured backend (DESIGN §4). */
interface Stores {
  sessions: SessionStore;
  credentials: CredentialStore;
  authenticators: BearerAuthenticator[];
  ready(): Promise<boolean>;
  close(): Promise<void>;
  /** Backend counters for `/metrics` (kubernetes: cache hits/misses/sizes). */
  metrics?: () => Record<string, number>;
  /** User-JWT keys by the backend's issuer discovery (`TURNKEY_OIDC_DISCOVERY=serviceaccount`). */
  jwtKeySource?: () => Promise<{ issuer: string; keys: JWTVerifyGetKey }>;
}

/** Open the embedded (bun:sqlite) or Kubernetes backend. @throws ConfigError / the backend's start-up error. */
async function openStores(cfg: Config, logger: Logger): Promise<Stores> {
  if (cfg.backend === "kubernetes") {
    const { createKubernetesBackend } = await import("./kubernetes/backend.ts");
    const kube = await createKubernetesBackend(cfg, logger);
    logger.info({ mode: kube.info.mode, server: kube.info.server }, "kubernetes backend");
    return {
      sessions: kube.sessions,
      credentials: kube.credentials,
      authenticators: kube.authenticators,
      ready: () => kube.ready(),
      close: () => kube.close(),
      metrics: () => kube.metrics(),
      ...(cfg.oidcDiscovery === "serviceaccount" ? { jwtKeySource: () => kube.serviceAccountIssuer() } : {}),
    };
  }
  const embedded = openEmbeddedStores(cfg);
  return {
    sessions: embedded.sessions,
    credentials: embedded.credentials,
    authenticators: [],
    ready: async () => {
      await embedded.sessions.get("readyz", "readyz");
      return true;
    },
    close: async () => embedded.close(),
  };
}

/**
 * The runner uid pool when local runners are spawned under `runnerUids` (checked by a probe
 * spawn, see `openRunnerUidPool`); else undefined, with the one warning that runners spawned as
 * the gateway's own user can read its data dir (DESIGN §7 rule 1 then rests on the host).
 * @throws ConfigError when the pool cannot be used.
 */
async function runnerUidPool(cfg: Config, logger: Logger) {
  if (cfg.runnerUrl) return undefined;
  if (!cfg.runnerUids) {
    logger.warn({}, "runners run as the gateway's OS user and can read its data dir; set TURNKEY_RUNNER_UIDS to isolate them");
    return undefined;
  }
  const pool = await openRunnerUidPool(cfg);
  logger.info({ runnerUids: cfg.runnerUids, turnsDir: cfg.turnsDir }, "runners run under per-turn uids");
  if (pool && pool.size < cfg.maxConcurrentTurns)
    logger.warn({ uids: pool.size, maxConcurrentTurns: cfg.maxConcurrentTurns }, "fewer runner uids than concurrent turns: turns beyond them get RUN_ERROR runner_unavailable");
  return pool;
}

/** How long shutdown waits for open streams to flush before closing them, ms. */
const SHUTDOWN_DRAIN_MS = 2000;

/** A running gateway. */
export interface RunningServer {
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  url: string;
  port: number;
  deps: AppDeps;
  /** Shutdown: refuse new requests, end live turns (teardown included), close stores. Idempotent. */
  stop(): Promise<void>;
}

/** Optional overrides, mainly for tests. */
export interface StartOptions {
  logger?: Logger;
  executor?: TurnExecutor;
}

/**
 * Build everything and listen on `cfg.host:cfg.port` (port 0 = any free port).
 * @throws ConfigError for unusable settings, or the listen error (EADDRINUSE) as is.
 */
export async function startServer(cfg: Config, opts: StartOptions = {}): Promise<RunningServer> {
  const logger = opts.logger ?? createLogger(cfg.logLevel);
  try {
    mkdirSync(cfg.dataDir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new ConfigError("TURNKEY_DATA_DIR", `cannot create ${cfg.dataDir}: ${(err as NodeJS.ErrnoException).code ?? "error"}`);
  }
  logger.info({ config: redactConfig(cfg) }, "starting turnkey");
  // Before anything else touches the data dir (crash recovery above all): one gateway per data dir.
  const unlock = lockDataDir(cfg.dataDir);
  try {
    const running = await startLocked(cfg, opts, logger);
    return { ...running, stop: () => running.stop().finally(unlock) };
  } catch (err) {
    unlock();
    throw err;
  }
}

/** `startServer` once the data dir is locked. */
async function startLocked(cfg: Config, opts: StartOptions, logger: Logger): Promise<RunningServer> {
  // Checked before anything is opened: a refused configuration leaves nothing behind.
  const forwarded = cfg.trustedProxies.length ? new ForwardedHeadersAuthenticator(cfg.trustedProxies) : undefined;
  if (forwarded?.trustsLocalPeers() && runnersShareLoopback(cfg))
    throw new ConfigError(
      "TURNKEY_TRUSTED_PROXIES",
      "trusts an address of this host (loopback or an interface address), but runners on this host can connect from those too and could then act as any user with X-Forwarded-User; trust only a proxy on another host, or run runners on another host (TURNKEY_RUNNER_URL)",
    );
  const stores = await openStores(cfg, logger);
  const turnTokens = await TurnTokenIssuer.open(cfg);
  // User-JWT keys: TURNKEY_JWKS_URL, else discovery (an external IdP's issuer, or the cluster's
  // service-account issuer), else the development issuer, which exists only on the embedded default.
  const keySource = cfg.jwksUrl
    ? undefined
    : cfg.oidcDiscovery === "issuer"
      ? memoiseDiscovery(() => discoverIssuer({ issuer: cfg.jwtIssuer }))
      : stores.jwtKeySource;
  const devIssuer = cfg.jwksUrl || keySource || cfg.backend === "kubernetes" ? undefined : await DevIssuer.open(cfg);
  // Discover once now so a misconfigured IdP shows in the log at start; requests retry on failure (503 meanwhile).
  keySource?.().then(
    (found) => logger.info({ issuer: found.issuer }, "oidc discovery ok"),
    (err: unknown) => {
      const cause = (err as { cause?: unknown }).cause ?? err; // the 503's cause says why (no secrets: URLs and HTTP codes)
      logger.warn({ reason: cause instanceof Error ? cause.message : String(cause) }, "oidc discovery failed; user tokens get 503 until it succeeds");
    },
  );
  const botTokens = cfg.runnerBotTokensFile ? BotTokenAuthenticator.fromFile(cfg.runnerBotTokensFile) : undefined;
  if (botTokens?.unbound.length)
    logger.warn({ bots: botTokens.unbound }, "runner bot tokens bound to no session may read the credentials of any session's active-run user; bind them as name@project/session:token");
  const authenticator = createAuthenticator({
    turnTokens,
    ...(devIssuer || cfg.jwksUrl || keySource
      ? { jwt: new JwtAuthenticator({ config: cfg, ...(devIssuer ? { devIssuer } : {}), ...(keySource ? { keySource } : {}) }) }
      : {}),
    members: stores.authenticators,
    ...(botTokens ? { botTokens } : {}),
    ...(forwarded ? { forwarded } : {}),
  });
  const activeRuns = new ActiveRunMap(1, cfg.maxConcurrentTurns);
  // Turn and credential-decision counters are derived from the audit records (src/metrics/registry.ts).
  const metrics = createGatewayMetrics({ activeRuns: () => activeRuns.size, ...(stores.metrics ? { kube: stores.metrics } : {}) });
  const audit = metrics.countAudit(createAuditSink({ dataDir: cfg.dataDir, mode: cfg.audit, logger }));
  const bus = new SessionEventBus(new SessionEventLog(cfg.dataDir, cfg.eventsRetention, cfg.eventsRetentionBytes), (err) =>
    logger.warn({ errName: (err as Error)?.name }, "could not write the session event log"),
  );
  let boundPort = cfg.port;
  // Spawned turns are journalled; what a killed gateway left behind is cleaned up before any turn runs.
  const journal = cfg.runnerUrl ? undefined : new TurnJournal(dataPath(cfg, "live-turns"), cfg.turnsDir ?? dataPath(cfg, "turns"));
  await journal?.recover(logger, (run) => {
    bus.publish(run.project, run.session, run.runId, { type: "RUN_ERROR", message: "The gateway stopped during this turn; it was ended when the gateway restarted", code: "gateway_restarted" } as BaseEvent);
    audit.write({ event: "turn.end", project: run.project, session: run.session, run: run.runId, principalSubject: `user:${run.userId}`, effectiveUserId: run.userId, outcome: "error" });
  });
  const executor = opts.executor ?? createTurnExecutor(cfg, logger, await runnerUidPool(cfg, logger), journal);
  const turns = new TurnService({
    sessions: stores.sessions,
    credentials: stores.credentials,
    activeRuns,
    turnTokens,
    executor,
    audit,
    bus,
    logger,
    providers: cfg.providers,
    turnTimeoutMs: cfg.turnTimeoutMs,
    credentialsUrl: () => `${publicBaseUrl(cfg, boundPort)}/api`,
  });
  const deps: AppDeps = {
    config: cfg,
    sessions: stores.sessions,
    credentials: stores.credentials,
    authenticator,
    activeRuns,
    turns,
    bus,
    audit,
    logger,
    ...(devIssuer ? { jwks: async () => devIssuer.jwks() } : {}),
    ready: stores.ready,
    metrics,
  };
  const app = createApp(deps).listen({
    hostname: cfg.host,
    port: cfg.port,
    // Declared lengths over maxBodyBytes get a JSON 413 from the app (onRequest); Bun's own
    // limit, which answers a bare 413, backs it up for chunked bodies that declare no length.
    maxRequestBodySize: cfg.maxBodyBytes * 2,
    // Likewise for WebSocket messages: the route refuses those over maxBodyBytes with an error
    // frame; Bun closes with 1009 past this, before buffering more (default would be 16 MiB).
    websocket: { maxPayloadLength: cfg.maxBodyBytes * 2 },
    // Non-streaming requests still time out; SSE responses lift this per request.
    idleTimeout: 30,
    // A second gateway on the same port must fail with EADDRINUSE, not share it (SO_REUSEPORT):
    // two processes would each keep an active-run map and run two turns in one session (found by
    // a break-it review).
    reusePort: false,
  });
  const server = app.server;
  if (!server) throw new Error("server did not start");
  boundPort = server.port ?? cfg.port;
  const url = `http://${cfg.host.includes(":") ? `[${cfg.host}]` : cfg.host}:${boundPort}`;
  logger.info({ url, dataDir: cfg.dataDir, backend: cfg.backend }, "turnkey listening");

  let stopping: Promise<void> | undefined;
  return {
    url,
    port: boundPort,
    deps,
    stop() {
      stopping ??= (async () => {
        turns.abortAll();
        const deadline = Date.now() + cfg.teardownGraceMs + 2000;
        while (activeRuns.size > 0 && Date.now() < deadline) await Bun.sleep(20);
        await executor.shutdown?.();
        // Let streams that still hold queued events (the final RUN_ERROR gateway_shutdown among
        // them) drain for a moment, then close whatever is left (watchers never end by themselves).
        await Promise.race([server.stop(false), Bun.sleep(SHUTDOWN_DRAIN_MS)]);
        server.stop(true);
        await audit.close();
        await stores.close();
        logger.info({}, "turnkey stopped");
      })();
      return stopping;
    },
  };
}

/**
 * Whether runners run on this host (and so can connect from its addresses): local runners
 * (spawned here) always; remote runners when `TURNKEY_RUNNER_URL` names loopback, `0.0.0.0` or one
 * of this host's interface addresses (a sidecar in the same pod).
 */
export function runnersShareLoopback(cfg: Pick<Config, "runnerUrl">, localAddresses: readonly string[] = hostAddresses()): boolean {
  if (!cfg.runnerUrl) return true;
  let host: string;
  try {
    host = new URL(cfg.runnerUrl.replaceAll("{project}", "p").replaceAll("{session}", "s")).hostname.replace(/^\[|\]$/g, "");
  } catch {
    return true;
  }
  return host === "localhost" || host === "::1" || host === "0.0.0.0" || /^127\./.test(host) || localAddresses.includes(host);
}
