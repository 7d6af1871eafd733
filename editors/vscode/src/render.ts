// HTML of the answer panel, free of the vscode API (unit-tested). Markdown goes through `marked`
// with every text a token carries escaped, raw HTML included, so an answer can never inject markup
// or script into the webview.
import { Marked, type RendererObject } from "marked";
import type { Run } from "./runs";

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Escapes every character that is markup in HTML text or in a quoted attribute. */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

/**
 * Escapes text for an element's content, leaving character references (`&amp;`, `&#58;`) as they
 * are: in content they are only text, and marked's text tokens may already hold some
 * (`&` next to a numeric reference arrives as `&amp;`).
 */
function escapeText(s: string): string {
  return s.replace(/&(?!(?:#\d+|#x[0-9a-f]+|[a-z][a-z0-9]*);)|[<>"']/gi, (c) => ESCAPES[c]);
}

/**
 * The renderers of every token that carries text of its own; marked's others only wrap the
 * output of these in fixed tags. Each escapes whatever the token says: marked passes raw HTML
 * through `html` tokens, and marks as `escaped` (to be output as it is) the text after an inline
 * `<pre>`, `<code>`, `<kbd>` or `<script>`, so that an unfinished `<img …` there would reach the
 * page as an element.
 */
export const RENDERER: RendererObject = {
  html(token) {
    return escapeHtml(token.text);
  },
  text(token) {
    return "tokens" in token && token.tokens ? this.parser.parseInline(token.tokens) : escapeText(token.text);
  },
  code(token) {
    // A language name, or no class: what follows ``` is the model's too.
    const lang = /^[\w+#.-]+(?=\s|$)/.exec(token.lang ?? "")?.[0];
    const body = token.text ? token.text.replace(/\n$/, "") + "\n" : "";
    return `<pre><code${lang ? ` class="language-${lang}"` : ""}>${escapeHtml(body)}</code></pre>\n`;
  },
  codespan(token) {
    return `<code>${escapeHtml(token.text)}</code>`;
  },
  link(token) {
    const text = this.parser.parseInline(token.tokens);
    const href = /^(https?:|mailto:)/i.test(token.href) ? token.href : "#";
    return `<a href="${escapeHtml(href)}" title="${escapeHtml(token.title ?? "")}">${text}</a>`;
  },
  image(token) {
    return escapeHtml(`![${token.text}](${token.href})`);
  },
};

const md = new Marked({ gfm: true, breaks: false, renderer: RENDERER });

export function renderMarkdown(text: string): string {
  return md.parse(text, { async: false }) as string;
}

const STATE_LABEL: Record<string, string> = {
  starting: "starting…",
  running: "working…",
  done: "done",
  cancelled: "cancelled",
  failed: "failed",
  truncated: "cut short",
};

export function renderRun(run: Run, index: number): string {
  const tools = run.tools.length
    ? `<details class="tools" ${run.state === "running" || run.state === "starting" || run.tools.length <= 5 ? "open" : ""}><summary>Tool calls (${run.tools.length})</summary><ul>${run.tools
        .map(
          (t) =>
            `<li class="${t.failed !== undefined ? "tool-failed" : "tool-ok"}"><code>${escapeHtml(t.tool)}</code> ${escapeHtml(t.detail)}${
              t.failed !== undefined ? ` <span class="failed">failed: ${escapeHtml(t.failed)}</span>` : ""
            }</li>`,
        )
        .join("")}</ul></details>`
    : "";
  const busy = run.state === "running" || run.state === "starting";
  const body = run.markdown
    ? `<div class="markdown">${renderMarkdown(run.markdown)}</div>`
    : busy
      ? `<div class="working"><span class="spinner"></span> ${escapeHtml(run.message)}</div>`
      : "";
  const question =
    run.question
      ? `<blockquote class="question">${escapeHtml(run.question)}</blockquote>`
      : "";
  const copy = run.markdown ? `<button class="copy" data-index="${index}" title="Copy the answer as markdown">Copy</button>` : "";
  const cut =
    run.state === "truncated"
      ? `<div class="cut"><span>${escapeHtml(run.endMessage ?? "The answer was cut short.")}</span> <button class="continue" data-index="${index}" title="Ask Punie to continue the answer">Continue</button></div>`
      : "";
  return `<section class="run run-${run.state}" data-run-id="${escapeHtml(run.runId ?? "")}">
<header><h2>${escapeHtml(run.title)}</h2><span class="state state-${run.state}">${STATE_LABEL[run.state] ?? run.state}</span>${copy}</header>
${question}${tools}${body}${cut}</section>`;
}

export function renderBody(runs: readonly Run[]): string {
  if (runs.length === 0) {
    return `<p class="empty">No answers yet. Select code and press <kbd>Ctrl+.</kbd> (or run <b>Punie: Ask Punie…</b>) to ask.</p>`;
  }
  return runs.map((r, i) => renderRun(r, i)).join("\n");
}

export function panelHtml(nonce: string, cspSource: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src ${cspSource} 'nonce-${nonce}'; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Punie</title>
<style nonce="${nonce}">
body { font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); color: var(--vscode-foreground); padding: 0 12px 64px; }
.run { border-bottom: 1px solid var(--vscode-panel-border, #8884); padding: 8px 0 12px; }
.run header { display: flex; align-items: center; gap: 8px; }
.run h2 { font-size: 1.1em; margin: 6px 0; flex: 1; }
.state { font-size: 0.85em; opacity: 0.8; }
.state-failed { color: var(--vscode-errorForeground); }
.state-cancelled, .state-truncated, .cut { color: var(--vscode-editorWarning-foreground); }
.cut { margin: 6px 0; }
blockquote.question { margin: 4px 0; padding: 2px 8px; border-left: 3px solid var(--vscode-textBlockQuote-border); background: var(--vscode-textBlockQuote-background); white-space: pre-wrap; }
.tools { margin: 6px 0; font-size: 0.92em; }
.tools ul { margin: 4px 0; padding-left: 18px; }
.tool-failed .failed { color: var(--vscode-errorForeground); }
pre { background: var(--vscode-textCodeBlock-background); padding: 8px; overflow-x: auto; }
code { font-family: var(--vscode-editor-font-family); }
.working { opacity: 0.85; }
.spinner { display: inline-block; width: 10px; height: 10px; border: 2px solid currentColor; border-right-color: transparent; border-radius: 50%; animation: spin 0.8s linear infinite; }
@keyframes spin { to { transform: rotate(360deg); } }
button { background: var(--vscode-button-background); color: var(--vscode-button-foreground); border: none; padding: 4px 10px; cursor: pointer; }
button:hover { background: var(--vscode-button-hoverBackground); }
button.secondary { background: var(--vscode-button-secondaryBackground); color: var(--vscode-button-secondaryForeground); }
.toolbar { position: fixed; bottom: 0; left: 0; right: 0; padding: 8px 12px; display: flex; gap: 8px; background: var(--vscode-editor-background); border-top: 1px solid var(--vscode-panel-border, #8884); }
</style></head>
<body>
<main id="runs">${body}</main>
<div class="toolbar">
<button id="followup" title="Ask a follow-up question about the answers above">Ask follow-up…</button>
<button id="copy-last" class="secondary" title="Copy the latest answer as markdown">Copy</button>
<button id="new" class="secondary" title="Clear this conversation">New conversation</button>
</div>
<script nonce="${nonce}">
const vscode = acquireVsCodeApi();
window.addEventListener('message', (e) => {
  const m = e.data;
  if (m && m.type === 'render') {
    document.getElementById('runs').innerHTML = m.body;
    window.scrollTo(0, document.body.scrollHeight);
  }
});
document.addEventListener('click', (e) => {
  const t = e.target;
  if (!(t instanceof HTMLElement)) return;
  if (t.classList.contains('continue')) vscode.postMessage({ type: 'continue', index: Number(t.dataset.index) });
  else if (t.classList.contains('copy')) vscode.postMessage({ type: 'copy', index: Number(t.dataset.index) });
  else if (t.id === 'copy-last') vscode.postMessage({ type: 'copy', index: -1 });
  else if (t.id === 'followup') vscode.postMessage({ type: 'followup' });
  else if (t.id === 'new') vscode.postMessage({ type: 'new' });
});
</script>
</body></html>`;
}
