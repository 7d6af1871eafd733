// Progress in the status bar: the latest report of the running run(s); click to cancel.
import * as vscode from "vscode";
import { statusText, type Run, type RunStore } from "./runs";

export const CANCEL_CLIENT_COMMAND = "punie.client.cancel";
export const SHOW_PANEL_COMMAND = "punie.client.showAnswers";

export class StatusBar implements vscode.Disposable {
  private item = vscode.window.createStatusBarItem("punie.progress", vscode.StatusBarAlignment.Left, 100);
  private hideTimer: ReturnType<typeof setTimeout> | undefined;
  private sub: { dispose(): void };

  constructor(private store: RunStore, private lingerMs = 5000) {
    this.item.name = "Punie";
    this.sub = store.onChange((run) => this.update(run));
  }

  private update(changed: Run): void {
    const active = this.store.active();
    const ended = active.length === 0 && changed.state !== "running" && changed.state !== "starting" ? changed : undefined;
    const s = statusText(active, ended);
    if (this.hideTimer) {
      clearTimeout(this.hideTimer);
      this.hideTimer = undefined;
    }
    if (!s) {
      this.item.hide();
      return;
    }
    this.item.text = s.text;
    this.item.tooltip = s.tooltip;
    this.item.command = active.length > 0 ? CANCEL_CLIENT_COMMAND : SHOW_PANEL_COMMAND;
    this.item.show();
    if (active.length === 0) this.hideTimer = setTimeout(() => this.item.hide(), this.lingerMs);
  }

  dispose(): void {
    if (this.hideTimer) clearTimeout(this.hideTimer);
    this.sub.dispose();
    this.item.dispose();
  }
}
