// The answer panel: one webview beside the editor that shows the conversation's runs as they stream.
import * as vscode from "vscode";
import { panelHtml, renderBody } from "./render";
import type { Run, RunStore } from "./runs";

export interface PanelActions {
  followUp(): void;
  /** Continues the answer of `run`, which was cut short. */
  continueAnswer(run: Run): void;
  newConversation(): void;
}

export class AnswerPanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private pending: ReturnType<typeof setTimeout> | undefined;
  private subs: vscode.Disposable[] = [];
  /** The runs shown, in order (a conversation). */
  readonly shown: Run[] = [];

  constructor(private store: RunStore, private actions: PanelActions) {
    this.subs.push(
      store.onChange((run) => {
        if (!this.shown.includes(run)) return;
        this.scheduleRender();
      }),
    );
  }

  /** Shows the run in the panel (opening the panel beside the editor when needed). */
  show(run: Run): void {
    if (!this.shown.includes(run)) this.shown.push(run);
    this.reveal();
    this.scheduleRender();
  }

  reveal(): void {
    if (this.panel) {
      if (!this.panel.visible) this.panel.reveal(vscode.ViewColumn.Beside, true);
      return;
    }
    this.panel = vscode.window.createWebviewPanel(
      "punie.answer",
      "Punie",
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus: true },
      { enableScripts: true, retainContextWhenHidden: true, localResourceRoots: [] },
    );
    const nonce = Array.from({ length: 24 }, () => Math.floor(Math.random() * 36).toString(36)).join("");
    this.panel.webview.html = panelHtml(nonce, this.panel.webview.cspSource, renderBody(this.shown));
    this.panel.webview.onDidReceiveMessage((m) => this.onMessage(m), undefined, this.subs);
    this.panel.onDidDispose(() => (this.panel = undefined), undefined, this.subs);
  }

  clear(): void {
    this.shown.length = 0;
    this.scheduleRender();
  }

  /** The latest answer's markdown, if any. */
  latestMarkdown(): string | undefined {
    return [...this.shown].reverse().find((r) => r.markdown)?.markdown;
  }

  /** The rendered HTML body the webview shows (also used by tests). */
  body(): string {
    return renderBody(this.shown);
  }

  private scheduleRender(): void {
    if (this.pending) return;
    this.pending = setTimeout(() => {
      this.pending = undefined;
      void this.panel?.webview.postMessage({ type: "render", body: this.body() });
    }, 50);
  }

  private async onMessage(m: { type?: string; index?: number }): Promise<void> {
    switch (m.type) {
      case "copy": {
        const run = m.index !== undefined && m.index >= 0 ? this.shown[m.index] : undefined;
        const text = run?.markdown ?? this.latestMarkdown();
        if (text) {
          await vscode.env.clipboard.writeText(text);
          void vscode.window.setStatusBarMessage("Punie: answer copied", 2000);
        }
        break;
      }
      case "continue": {
        const run = m.index !== undefined ? this.shown[m.index] : undefined;
        if (run?.state === "truncated") this.actions.continueAnswer(run);
        break;
      }
      case "followup":
        this.actions.followUp();
        break;
      case "new":
        this.actions.newConversation();
        break;
    }
  }

  dispose(): void {
    if (this.pending) clearTimeout(this.pending);
    this.panel?.dispose();
    for (const s of this.subs) s.dispose();
  }
}
