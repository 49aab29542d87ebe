/**
 * Test harness for the supervisor: runs one turn with a fixture runner and collects the events,
 * the outcome and every log line.
 */
import { resolve } from "node:path";
import type { BaseEvent } from "@ag-ui/core";
import { LocalRunnerSupervisor, type LocalRunnerOptions, type SupervisorLogger } from "../../src/runner/supervisor.ts";
import type { TurnContext, TurnOutcome } from "../../src/runner/types.ts";

/** Absolute path of a fixture runner. */
export const fixture = (name: string) => resolve(import.meta.dir, "../fixtures/runners", `${name}.ts`);

/** A logger that keeps every line in memory. */
export function memoryLogger() {
  const lines: { level: string; msg?: string; obj: Record<string, unknown> }[] = [];
  const at = (level: string) => (obj: object, msg?: string) => lines.push({ level, msg, obj: obj as Record<string, unknown> });
  const logger: SupervisorLogger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
  return { lines, logger };
}

/** A supervisor running `bun <fixture>` with test defaults. */
export function supervisor(turnsRoot: string, name: string, extra: Partial<LocalRunnerOptions> = {}) {
  const mem = memoryLogger();
  const sup = new LocalRunnerSupervisor({
    command: [process.execPath, fixture(name)],
    graceMs: 2000,
    githubHosts: ["github.com"],
    gitlabHosts: ["gitlab.com"],
    turnsRoot,
    logger: mem.logger,
    baseEnv: { PATH: process.env.PATH, LANG: "C.UTF-8", TURNKEY_MASTER_KEY: "gateway-master-key-0000000000", TURNKEY_LEAK_MARKER: "leak-marker-value" },
    ...extra,
  });
  return { sup, logs: mem.lines };
}

/** Run one turn, collecting events; `onEvent` may act mid-turn (abort, interrupt). */
export async function runTurn(
  sup: LocalRunnerSupervisor,
  ctx: TurnContext,
  onEvent?: (e: BaseEvent) => void,
): Promise<{ events: BaseEvent[]; outcome: TurnOutcome; types: string[]; ms: number }> {
  const events: BaseEvent[] = [];
  const started = Date.now();
  const outcome = await sup.execute(ctx, (e) => {
    events.push(e);
    onEvent?.(e);
  });
  return { events, outcome, types: events.map((e) => e.type as string), ms: Date.now() - started };
}

/** The value of the first CUSTOM event called `name`. */
export function custom<T>(events: BaseEvent[], name: string): T | undefined {
  const e = events.find((x) => x.type === "CUSTOM" && (x as unknown as { name: string }).name === name);
  return (e as unknown as { value: T } | undefined)?.value;
}

/** Concatenated text of all TEXT_MESSAGE_CONTENT deltas. */
export function text(events: BaseEvent[]): string {
  return events
    .filter((e) => e.type === "TEXT_MESSAGE_CONTENT")
    .map((e) => (e as unknown as { delta: string }).delta)
    .join("");
}
