/**
 * The contract between the turn orchestration and whatever executes a turn (local supervisor,
 * spawned HTTP runner, remote proxy).
 */
import type { BaseEvent, RunAgentInput } from "@ag-ui/core";
import type { CredentialRecords } from "../credentials/types.ts";
import type { ProviderName } from "../credentials/providers.ts";

/** Everything a runner needs for one turn. Secrets live only here and in the child. */
export interface TurnContext {
  project: string;
  session: string;
  threadId: string;
  runId: string;
  /** The sender: the turn's effective user. */
  userId: string;
  userName: string;
  userEmail?: string;
  /** Turn token (JWT) the runner presents to the credential endpoint. */
  turnToken: string;
  /** Base URL of the credential endpoints, e.g. `http://127.0.0.1:8080/api`. */
  credentialsUrl: string;
  /** The sender's credentials, resolved before the runner starts; missing providers are absent. */
  credentials: Partial<{ [P in ProviderName]: CredentialRecords[P] }>;
  /** The validated RunAgentInput (threadId/runId filled in). */
  input: RunAgentInput;
  /** Epoch ms at which the turn is cut off. */
  deadline: number;
  /** Aborted on client disconnect, interrupt, or gateway shutdown. */
  signal: AbortSignal;
  /** Backpressure from the requester's stream, when it has one (see `TurnFlow`). */
  flow?: TurnFlow;
}

/**
 * Flow control from the requester's stream: while `congested()`, executors stop reading the
 * runner (its writes then block on a full pipe or socket) and resume once `drained()` resolves.
 * So a client that reads slowly slows the runner down instead of being cut off; one that stops
 * reading altogether is ended by the stream's owner (`drained()` then never resolves before the
 * turn is aborted with `client_too_slow`).
 */
export interface TurnFlow {
  congested(): boolean;
  drained(): Promise<void>;
}

/** How a turn ended. */
export interface TurnOutcome {
  status: "finished" | "error" | "aborted" | "timeout";
  /** Runner exit code or signal, when a process was involved. */
  exitCode?: number | null;
  /** Human message for `error` (already scrubbed). */
  message?: string;
}

/**
 * Receives a turn's events. `rawSse`, when given, is the exact SSE bytes a remote runner sent
 * for this event (issue 3: pass the stream through byte for byte); the requester's stream then
 * writes those bytes instead of re-encoding `event`. Executors pass `rawSse` only when the scrubbed
 * event is unchanged, so raw bytes never carry a secret the scrubber would have removed.
 */
export type TurnEmit = (event: BaseEvent, rawSse?: Uint8Array) => void;

/**
 * Executes one turn and streams its AG-UI events through `emit`, already validated and scrubbed
 * of every secret injected for this turn. The stream always starts with RUN_STARTED and ends with
 * exactly one RUN_FINISHED or RUN_ERROR (synthesised when the runner does not send one).
 * Teardown of everything it created happens before the promise settles, on every path.
 * Never rejects: failures become a RUN_ERROR event and an `error` outcome.
 */
/** Which run: the session it belongs to and its AG-UI run ID. */
export interface RunRef {
  project: string;
  session: string;
  runId: string;
}

export interface TurnExecutor {
  execute(ctx: TurnContext, emit: TurnEmit): Promise<TurnOutcome>;
  /**
   * Interrupt the live turn of `ref` (SIGINT for a local runner, `POST /interrupt` for a remote
   * one). Selects on project, session *and* run ID: run IDs are chosen by clients and visible to
   * every watcher, so a run ID alone would let a caller reach another session's turn (found by a
   * break-it review).
   */
  interrupt?(ref: RunRef): boolean | Promise<boolean>;
  /** What this executor can do, for `GET .../agui/capabilities`. */
  capabilities?(ctx: { project: string; session: string }): Promise<Record<string, unknown>>;
  /** End every live turn (gateway shutdown), teardown included. */
  shutdown?(): Promise<void>;
}

/**
 * Why a turn was aborted, carried as `AbortSignal.reason` on `TurnContext.signal`, so executors
 * end the turn with a RUN_ERROR that says so (`code`, e.g. `client_too_slow`,
 * `client_disconnected`, `gateway_shutdown`, `interrupted`) instead of a generic "aborted".
 */
export class TurnAbort extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "TurnAbort";
    this.code = code;
  }
}
