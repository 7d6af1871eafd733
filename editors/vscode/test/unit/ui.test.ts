// The answer panel and the status bar against the stubbed vscode API.
import * as assert from "node:assert/strict";
import { stub } from "./stub";
import { AnswerPanel } from "../../src/panel";
import { escapeHtml, panelHtml, renderMarkdown } from "../../src/render";
import { RunStore } from "../../src/runs";
import { StatusBar } from "../../src/status";
import type { AskArgs } from "../../src/lsp_ext";

const args: AskArgs = { uri: "file:///ws/a.py", range: { start: { line: 0, character: 0 }, end: { line: 1, character: 0 } }, instruction: "explain" };
const tick = (ms = 80) => new Promise((r) => setTimeout(r, ms));

describe("render", () => {
  it("renders markdown and escapes raw HTML", () => {
    const html = renderMarkdown("# Title\n\n<script>alert(1)</script>\n\n```python\nx = 1 < 2\n```\n[a](javascript:alert(1))");
    assert.match(html, /<h1>Title<\/h1>/);
    assert.ok(!html.includes("<script>"));
    assert.match(html, /&lt;script&gt;/);
    assert.match(html, /<code class="language-python">x = 1 &lt; 2/);
    assert.ok(!html.includes("javascript:"));
    assert.equal(escapeHtml(`<a href="x">'`), "&lt;a href=&quot;x&quot;&gt;&#39;");
  });
  it("the page has a strict CSP and the three buttons", () => {
    const html = panelHtml("N0NCE", "vscode-webview:", "");
    assert.match(html, /default-src 'none'/);
    assert.match(html, /script-src 'nonce-N0NCE'/);
    for (const id of ["followup", "copy-last", "new"]) assert.match(html, new RegExp(`id="${id}"`));
  });
});

describe("answer panel", () => {
  beforeEach(() => stub.reset());

  it("offers Continue under an answer that was cut, and only there", async () => {
    const store = new RunStore();
    const continued: string[] = [];
    const panel = new AnswerPanel(store, { followUp: () => undefined, continueAnswer: (r) => continued.push(r.runId ?? ""), newConversation: () => undefined });
    const done = store.start(args);
    const cut = store.start(args);
    panel.show(done);
    panel.show(cut);
    store.started(done, "d1");
    store.started(cut, "c1");
    store.answer({ runId: "d1", uri: args.uri, range: args.range, markdown: "Complete.", status: "done" });
    store.progress(cut.token, { kind: "end", message: "truncated: the answer was cut at the limit of 512 tokens per model turn" });
    store.answer({ runId: "c1", uri: args.uri, range: args.range, markdown: "It starts with", status: "truncated" });
    await tick();
    const body = (stub.panels[0].webview.posted.at(-1) as { body: string }).body;
    assert.equal(body.match(/class="continue"/g)?.length, 1);
    assert.match(body, /cut at the limit of 512 tokens[^<]*<\/span> <button class="continue" data-index="1"/);
    assert.match(body, /cut short/);
    stub.panels[0].webview.receive({ type: "continue", index: 0 });
    stub.panels[0].webview.receive({ type: "continue", index: 1 });
    assert.deepEqual(continued, ["c1"]);
  });

  it("opens beside the editor, streams the run and shows the answer", async () => {
    const store = new RunStore();
    const actions = { followUps: 0, news: 0 };
    const panel = new AnswerPanel(store, { followUp: () => actions.followUps++, continueAnswer: () => assert.fail("not cut"), newConversation: () => actions.news++ });
    const run = store.start(args);
    panel.show(run);
    assert.equal(stub.panels.length, 1);
    const web = stub.panels[0].webview;
    assert.match(web.html, /Explain a\.py:1/);
    store.started(run, "r1");
    store.progress(run.token, { kind: "report", message: "read_file a.py" });
    await tick();
    const last = () => (web.posted.at(-1) as { body: string }).body;
    assert.match(last(), /<code>read_file<\/code> a\.py/);
    assert.match(last(), /working…/);
    store.answer({ runId: "r1", uri: args.uri, range: args.range, markdown: "`f` adds **two** numbers.", status: "done" });
    await tick();
    assert.match(last(), /<strong>two<\/strong>/);
    assert.match(last(), /class="copy"/);

    web.receive({ type: "copy", index: 0 });
    await tick(10);
    assert.equal(stub.clipboard, "`f` adds **two** numbers.");
    web.receive({ type: "followup" });
    web.receive({ type: "new" });
    assert.deepEqual(actions, { followUps: 1, news: 1 });
    panel.clear();
    await tick();
    assert.match(last(), /No answers yet/);
    panel.dispose();
  });
});

describe("status bar", () => {
  beforeEach(() => stub.reset());

  it("shows progress with a cancel action, then the end, then hides", async () => {
    const store = new RunStore();
    const bar = new StatusBar(store, 30);
    const item = stub.statusItems[0];
    const run = store.start(args);
    store.started(run, "r");
    store.progress(run.token, { kind: "report", message: "generating" });
    assert.equal(item.visible, true);
    assert.equal(item.text, "$(loading~spin) Punie: generating");
    assert.equal(item.command, "punie.client.cancel");
    store.progress(run.token, { kind: "end", message: "done" });
    assert.equal(item.text, "$(check) Punie: done");
    assert.equal(item.command, "punie.client.showAnswers");
    await tick(60);
    assert.equal(item.visible, false);
    bar.dispose();
  });
});
