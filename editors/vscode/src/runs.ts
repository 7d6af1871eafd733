// Run bookkeeping, free of the vscode API so that it is unit-tested directly: each run the client
// starts gets its own progress token; $/progress values and punie/answer notifications update it.
import type { AnswerParams, AskArgs, RunStatus } from "./lsp_ext";
import { END_CANCELLED, END_DONE, END_FAILED_PREFIX, END_TRUNCATED_PREFIX } from "./lsp_ext";

/** Sandbox functions the model may call; a progress report starting with one is a tool call. */
export const TOOL_NAMES = new Set([
  "read_file", "write_file", "run_command", "typecheck", "ruff_check", "pytest_run",
  "goto_definition", "find_references", "hover", "document_symbols", "workspace_symbols",
  "git_status", "git_diff", "git_log", "cst_find_pattern", "cst_rename", "cst_add_import",
  "validate_component", "check_render_tree", "validate_escape_context",
  "validate_service_registration", "check_dependency_graph", "validate_injection_site",
  "validate_middleware_chain", "check_di_template_binding", "validate_route_pattern",
]);

export interface ToolCall {
  tool: string;
  detail: string;
  failed?: string;
}

/** Parses a progress report: `<tool> <short argument>` or `<tool> failed: <Type>: <message>`. */
export function parseToolReport(message: string): { tool: string; detail: string; failed?: string } | undefined {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:\s+([\s\S]*))?$/.exec(message.trim());
  if (!m || !TOOL_NAMES.has(m[1])) return undefined;
  const rest = (m[2] ?? "").trim();
  if (rest.startsWith("failed:")) return { tool: m[1], detail: "", failed: rest.slice("failed:".length).trim() };
  return { tool: m[1], detail: rest };
}

export type RunState = "starting" | "running" | RunStatus;

export interface Run {
  /** Client-side id, also the workDoneToken sent with punie.ask. */
  token: string;
  runId?: string;
  args: AskArgs;
  title: string;
  /** The question as the user wrote it (a follow-up's `args.question` also carries the history). */
  question?: string;
  state: RunState;
  /** Latest progress message (phase or tool), for the status bar. */
  message: string;
  percentage?: number;
  reports: string[];
  tools: ToolCall[];
  markdown: string;
  endMessage?: string;
  startedAt: number;
  endedAt?: number;
}

export const INSTRUCTION_TITLES: Record<string, string> = {
  explain: "Explain",
  fix: "Fix",
  tests: "Write tests",
  refactor: "Refactor",
  ask: "Ask",
};

export function runTitle(args: AskArgs): string {
  const base = INSTRUCTION_TITLES[args.instruction] ?? args.instruction;
  if (args.instruction === "ask" && args.question) {
    const q = args.question.replace(/\s+/g, " ").trim();
    return q.length > 80 ? q.slice(0, 79) + "…" : q;
  }
  const file = args.uri.split("/").pop() ?? args.uri;
  return `${base} ${decodeURIComponent(file)}:${args.range.start.line + 1}`;
}

export interface ProgressValue {
  kind: "begin" | "report" | "end";
  title?: string;
  message?: string;
  percentage?: number;
  cancellable?: boolean;
}

export function statusFromEnd(message: string | undefined): RunStatus {
  if (message === END_CANCELLED) return "cancelled";
  if (message !== undefined && message.startsWith(END_FAILED_PREFIX)) return "failed";
  if (message !== undefined && message.startsWith(END_TRUNCATED_PREFIX)) return "truncated";
  if (message === END_DONE) return "done";
  return "done";
}

type Listener = (run: Run) => void;

export class RunStore {
  private runs: Run[] = [];
  private listeners: Listener[] = [];
  private counter = 0;
  constructor(private now: () => number = Date.now) {}

  onChange(l: Listener): { dispose(): void } {
    this.listeners.push(l);
    return { dispose: () => (this.listeners = this.listeners.filter((x) => x !== l)) };
  }
  private fire(run: Run): void {
    for (const l of this.listeners) l(run);
  }

  newToken(): string {
    this.counter += 1;
    return `punie-vscode-${this.now().toString(36)}-${this.counter}`;
  }

  private early = new Map<string, AnswerParams>();

  /** Starts tracking a run. `display` overrides the title and the question shown (follow-ups). */
  start(args: AskArgs, display?: { title?: string; question?: string }, token = this.newToken()): Run {
    const run: Run = {
      token, args, title: display?.title ?? runTitle(args), question: display?.question ?? args.question,
      state: "starting", message: "starting", reports: [], tools: [], markdown: "", startedAt: this.now(),
    };
    this.runs.push(run);
    this.fire(run);
    return run;
  }

  all(): readonly Run[] {
    return this.runs;
  }
  active(): Run[] {
    return this.runs.filter((r) => r.state === "starting" || r.state === "running");
  }
  byToken(token: string | number): Run | undefined {
    return this.runs.find((r) => r.token === String(token));
  }
  byRunId(runId: string): Run | undefined {
    return this.runs.find((r) => r.runId === runId);
  }

  /** The server answered punie.ask. A token other than ours is adopted. */
  started(run: Run, runId: string, token?: string | number): void {
    run.runId = runId;
    if (token !== undefined && String(token) !== run.token) run.token = String(token);
    if (run.state === "starting") run.state = "running";
    this.fire(run);
    const early = this.early.get(runId);
    if (early) {
      this.early.delete(runId);
      this.answer(early);
    }
  }

  /** punie.ask failed (e.g. -32602): the run ends at once. */
  rejected(run: Run, reason: string): void {
    run.state = "failed";
    run.endMessage = `failed: ${reason}`;
    run.markdown = `**Punie could not start this run:** ${reason}`;
    run.endedAt = this.now();
    this.fire(run);
  }

  progress(token: string | number, value: ProgressValue): Run | undefined {
    const run = this.byToken(token);
    if (!run) return undefined;
    this.applyProgress(run, value);
    return run;
  }

  applyProgress(run: Run, value: ProgressValue): void {
    if (value.percentage !== undefined) run.percentage = value.percentage;
    switch (value.kind) {
      case "begin":
        if (run.state === "starting") run.state = "running";
        if (value.message) this.report(run, value.message);
        break;
      case "report":
        if (run.state === "starting") run.state = "running";
        if (value.message) this.report(run, value.message);
        break;
      case "end":
        run.endMessage = value.message ?? END_DONE;
        run.message = run.endMessage;
        // The answer may come before or after `end`; the state follows whichever says more.
        if (run.state === "starting" || run.state === "running") run.state = statusFromEnd(value.message);
        run.endedAt ??= this.now();
        break;
    }
    this.fire(run);
  }

  private report(run: Run, message: string): void {
    run.message = message;
    run.reports.push(message);
    const t = parseToolReport(message);
    if (!t) return;
    if (t.failed !== undefined) {
      const last = [...run.tools].reverse().find((c) => c.tool === t.tool && c.failed === undefined);
      if (last) last.failed = t.failed;
      else run.tools.push({ tool: t.tool, detail: "", failed: t.failed });
    } else {
      run.tools.push({ tool: t.tool, detail: t.detail });
    }
  }

  /** punie/answer. An answer for a run whose punie.ask reply has not come yet is kept until it does. */
  answer(p: AnswerParams): Run | undefined {
    const run = this.byRunId(p.runId);
    if (!run) {
      if (this.active().some((r) => r.runId === undefined)) this.early.set(p.runId, p);
      return undefined;
    }
    run.markdown = p.markdown;
    run.state = p.status;
    run.endedAt ??= this.now();
    this.fire(run);
    return run;
  }

  /** Forgets finished runs (New conversation); running ones stay. */
  clearFinished(): void {
    this.runs = this.runs.filter((r) => r.state === "starting" || r.state === "running");
  }
}

/** The status bar text for the current runs, or undefined to hide it. */
export function statusText(active: readonly Run[], lastEnded?: Run): { text: string; tooltip: string } | undefined {
  if (active.length > 0) {
    const r = active[active.length - 1];
    const more = active.length > 1 ? ` (+${active.length - 1})` : "";
    const msg = r.message.length > 50 ? r.message.slice(0, 49) + "…" : r.message;
    return {
      text: `$(loading~spin) Punie: ${msg}${more}`,
      tooltip: `Punie is working on "${r.title}". Click to cancel.`,
    };
  }
  if (lastEnded) {
    const icons: Record<string, string> = { done: "$(check)", cancelled: "$(circle-slash)", truncated: "$(warning)" };
    const icon = icons[lastEnded.state] ?? "$(error)";
    return { text: `${icon} Punie: ${lastEnded.endMessage ?? lastEnded.state}`, tooltip: `"${lastEnded.title}" ended. Click to show the answer.` };
  }
  return undefined;
}

/** What "Continue" asks after an answer that was cut. */
export const CONTINUE_QUESTION = "Your last answer was cut off. Continue it from where it stopped.";

/** The question of a follow-up: the previous exchanges (latest last, shortened) and the new question. */
export function followUpQuestion(history: readonly Run[], question: string, maxChars = 6000): string {
  const parts: string[] = [];
  let used = 0;
  for (const r of [...history].reverse()) {
    if (r.state !== "done" && r.state !== "truncated" && r.state !== "cancelled") continue;
    const q = r.question ?? `${INSTRUCTION_TITLES[r.args.instruction] ?? r.args.instruction} the selection`;
    const block = `Q: ${q}\nA: ${r.markdown}`;
    if (used + block.length > maxChars) break;
    parts.unshift(block);
    used += block.length;
  }
  if (parts.length === 0) return question;
  return `Earlier in this conversation:\n\n${parts.join("\n\n")}\n\nFollow-up question: ${question}`;
}
