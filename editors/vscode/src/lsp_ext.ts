// The Punie extensions to LSP that this client relies on, mirrored from the contract
// (shared INTERFACES.md §2; the project's copy lives in docs/INTERFACES.md).
// Keep every punie/* method and punie.* command name here and nowhere else.

import * as lc from "vscode-languageserver-protocol";

/** Server commands (workspace/executeCommand), listed in executeCommandProvider.commands. */
export const ASK_COMMAND = "punie.ask";
export const CANCEL_COMMAND = "punie.cancel";
/** Forget the server's conversations: the next free-form question starts afresh. */
export const NEW_CONVERSATION_COMMAND = "punie.newConversation";
/**
 * The change annotation (needsConfirmation) on writes that clients without
 * `experimental.puniePermission` must confirm. This client declares that capability, so it
 * never receives one; the name is listed so the contract's names all live here.
 */
export const WRITE_ANNOTATION = "punie.write";

/** The `instruction` of a `punie.ask` argument. */
export type Instruction = "explain" | "fix" | "tests" | "refactor" | "ask";
export const INSTRUCTIONS: readonly Instruction[] = ["explain", "fix", "tests", "refactor", "ask"];

/** Argument of `punie.ask` (one element of `arguments`). */
export interface AskArgs {
  uri: string;
  range: lc.Range;
  instruction: Instruction;
  question?: string;
}

/** Result of `punie.ask`: `token` is absent when the client has no window.workDoneProgress. */
export interface AskResult {
  runId: string;
  token?: lc.ProgressToken;
}

/** Argument and result of `punie.cancel`. */
export interface CancelArgs {
  runId: string;
}
export interface CancelResult {
  cancelled: boolean;
}

/** Notification sent when a run ends, only to clients that declare `experimental.punieAnswer`. */
/** `truncated`: the answer was cut (token cap or context); the panel offers to continue. */
export type RunStatus = "done" | "truncated" | "cancelled" | "failed";
export interface AnswerParams {
  runId: string;
  uri: string;
  range: lc.Range;
  markdown: string;
  status: RunStatus;
}
export const answer = new lc.NotificationType<AnswerParams>("punie/answer");

/** Client capability: `capabilities.experimental.punieAnswer = true`. */
export const ANSWER_CAPABILITY = "punieAnswer";

/**
 * Client capability `experimental.punieUserSettings = true`: the settings this client sends are
 * the user's alone (toolPolicy, maxTurns and the sandbox's limits have `application` scope), so the
 * server lets them loosen the policy and raise the limits past their defaults.
 */
export const USER_SETTINGS_CAPABILITY = "punieUserSettings";

/** Client capability `experimental.puniePermission = true`: permission questions come as `punie/permission`. */
export const PERMISSION_CAPABILITY = "puniePermission";

/** A write's change, for the diff editor. */
export interface PermissionChange {
  uri: string;
  /** The current text; null for a new file (or one that is not text). */
  before: string | null;
  after: string;
  /** `1 line added, 1 removed`. */
  summary: string;
}

/** A permission question (server → client). Every text is escaped by the server and says what it cuts. */
export interface PermissionParams {
  runId: string;
  tool: string;
  kind: "read" | "write" | "execute" | "call";
  /** One line: `Punie wants to write src/app.py`. */
  title: string;
  /** The dialog's text, the title first. */
  message: string;
  /** Everything: the whole command, the whole diff. */
  details: string;
  /** `message` leaves out part of `details` beyond the diff. */
  cut: boolean;
  /** What "Allow for this session" covers; null: do not offer it. */
  session: string | null;
  change: PermissionChange | null;
}

export type PermissionAnswer = "allow" | "allowSession" | "deny";
export interface PermissionResult {
  answer: PermissionAnswer;
}
export const permission = new lc.RequestType<PermissionParams, PermissionResult, void>("punie/permission");

/** Configuration section pulled with workspace/configuration and sent on didChangeConfiguration. */
export const CONFIG_SECTION = "punie";

/** Buttons of the permission `window/showMessageRequest`. */
export const PERMISSION_ACTIONS = ["Allow", "Allow for this session", "Deny"] as const;

/** Title prefix of every code action the server offers. */
export const CODE_ACTION_PREFIX = "Ask Punie";

/** Progress: the `begin` title and the exact `end` messages. */
export const PROGRESS_TITLE = "Punie";
export const END_DONE = "done";
export const END_CANCELLED = "cancelled";
export const END_FAILED_PREFIX = "failed: ";
export const END_TRUNCATED_PREFIX = "truncated: ";
