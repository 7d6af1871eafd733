import * as assert from "node:assert/strict";
import { CONTINUE_QUESTION, followUpQuestion, parseToolReport, RunStore, runTitle, statusFromEnd, statusText } from "../../src/runs";
import type { AskArgs } from "../../src/lsp_ext";

const args = (instruction: AskArgs["instruction"], question?: string): AskArgs => ({
  uri: "file:///ws/src/app%20x.py",
  range: { start: { line: 4, character: 0 }, end: { line: 6, character: 3 } },
  instruction,
  ...(question ? { question } : {}),
});

describe("runs: progress reports", () => {
  it("parses tool reports and ignores phases", () => {
    assert.deepEqual(parseToolReport("read_file README.md"), { tool: "read_file", detail: "README.md" });
    assert.deepEqual(parseToolReport("run_command pytest -q"), { tool: "run_command", detail: "pytest -q" });
    assert.deepEqual(parseToolReport("write_file failed: PermissionError: denied by the user"), {
      tool: "write_file", detail: "", failed: "PermissionError: denied by the user",
    });
    assert.equal(parseToolReport("generating"), undefined);
    assert.equal(parseToolReport("queued (2 ahead)"), undefined);
    assert.equal(parseToolReport("turn 2"), undefined);
  });

  it("maps end messages to a status", () => {
    assert.equal(statusFromEnd("done"), "done");
    assert.equal(statusFromEnd("cancelled"), "cancelled");
    assert.equal(statusFromEnd("failed: model not installed: run punie models fetch"), "failed");
    assert.equal(statusFromEnd("truncated: the answer was cut at the limit of 512 tokens per model turn"), "truncated");
  });

  it("titles runs by instruction, or by the question", () => {
    assert.equal(runTitle(args("fix")), "Fix app x.py:5");
    assert.equal(runTitle(args("tests")), "Write tests app x.py:5");
    assert.equal(runTitle(args("ask", "why   is\nthis slow?")), "why is this slow?");
    assert.equal(runTitle(args("ask", "x".repeat(200))).length, 80);
  });
});

describe("runs: RunStore", () => {
  it("follows a run from start to answer and lists its tool calls", () => {
    const s = new RunStore(() => 1000);
    const seen: string[] = [];
    s.onChange((r) => seen.push(r.state));
    const run = s.start(args("explain"));
    assert.match(run.token, /^punie-vscode-/);
    assert.equal(s.active().length, 1);
    s.started(run, "r1", run.token);
    s.progress(run.token, { kind: "begin", title: "Punie", cancellable: true });
    s.progress(run.token, { kind: "report", message: "generating" });
    s.progress(run.token, { kind: "report", message: "read_file README.md" });
    s.progress(run.token, { kind: "report", message: "run_command pytest -q" });
    s.progress(run.token, { kind: "report", message: "run_command failed: PermissionError: denied" });
    s.progress(run.token, { kind: "end", message: "done" });
    assert.equal(run.state, "done");
    assert.equal(s.active().length, 0);
    s.answer({ runId: "r1", uri: run.args.uri, range: run.args.range, markdown: "It **works**.", status: "done" });
    assert.equal(run.markdown, "It **works**.");
    assert.deepEqual(run.tools, [
      { tool: "read_file", detail: "README.md" },
      { tool: "run_command", detail: "pytest -q", failed: "PermissionError: denied" },
    ]);
    assert.deepEqual(run.reports, ["generating", "read_file README.md", "run_command pytest -q", "run_command failed: PermissionError: denied"]);
    assert.ok(seen.length >= 7);
  });

  it("the answer's status wins over the end message, in either order", () => {
    const s = new RunStore();
    const run = s.start(args("fix"));
    s.started(run, "r2");
    s.answer({ runId: "r2", uri: "", range: run.args.range, markdown: "partial", status: "cancelled" });
    s.progress(run.token, { kind: "end", message: "cancelled" });
    assert.equal(run.state, "cancelled");
  });

  it("keeps an answer that comes before the punie.ask reply", () => {
    const s = new RunStore();
    const run = s.start(args("explain"));
    assert.equal(s.answer({ runId: "r3", uri: "", range: run.args.range, markdown: "early", status: "done" }), undefined);
    s.started(run, "r3");
    assert.equal(run.markdown, "early");
    assert.equal(run.state, "done");
  });

  it("adopts the server's token when it differs", () => {
    const s = new RunStore();
    const run = s.start(args("explain"));
    s.started(run, "r4", 77);
    assert.equal(s.byToken(77), run);
    s.progress(77, { kind: "report", message: "generating" });
    assert.equal(run.message, "generating");
  });

  it("a rejected punie.ask ends the run as failed", () => {
    const s = new RunStore();
    const run = s.start(args("ask"));
    s.rejected(run, "question: missing");
    assert.equal(run.state, "failed");
    assert.match(run.markdown, /question: missing/);
    assert.equal(s.active().length, 0);
  });

  it("clearFinished keeps running runs", () => {
    const s = new RunStore();
    const a = s.start(args("explain"));
    const b = s.start(args("fix"));
    s.started(a, "a");
    s.started(b, "b");
    s.progress(a.token, { kind: "end", message: "done" });
    s.clearFinished();
    assert.deepEqual(s.all(), [b]);
  });
});

describe("runs: status bar text", () => {
  it("shows the latest report with a spinner, then how it ended", () => {
    const s = new RunStore();
    const run = s.start(args("explain"));
    s.started(run, "x");
    s.progress(run.token, { kind: "report", message: "read_file README.md" });
    const t = statusText(s.active());
    assert.equal(t?.text, "$(loading~spin) Punie: read_file README.md");
    assert.match(t!.tooltip, /Click to cancel/);
    s.start(args("fix"));
    assert.match(statusText(s.active())!.text, /\(\+1\)$/);
    s.progress(run.token, { kind: "end", message: "cancelled" });
    assert.equal(statusText([], run)?.text, "$(circle-slash) Punie: cancelled");
    assert.equal(statusText([]), undefined);
  });
});

describe("runs: follow-up questions", () => {
  it("carries the earlier exchanges", () => {
    const s = new RunStore();
    const r = s.start(args("ask", "What does f do?"));
    s.started(r, "q1");
    s.answer({ runId: "q1", uri: "", range: r.args.range, markdown: "It adds.", status: "done" });
    const q = followUpQuestion([r], "And g?");
    assert.match(q, /Q: What does f do\?\nA: It adds\./);
    assert.match(q, /Follow-up question: And g\?$/);
    assert.equal(followUpQuestion([], "And g?"), "And g?");
    const cut = s.start(args("ask", "List them all"));
    s.started(cut, "q2");
    s.answer({ runId: "q2", uri: "", range: cut.args.range, markdown: "One, two,", status: "truncated" });
    assert.match(followUpQuestion([r, cut], CONTINUE_QUESTION), /Q: List them all\nA: One, two,\n\nFollow-up question: Your last answer was cut off/);
  });
});
