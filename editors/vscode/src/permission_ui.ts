// The VS Code side of permission questions: dialogs, notifications, and read-only documents
// (scheme `punie-permission`) that hold a proposed change's two texts for the diff editor and a
// question's whole text. The flow itself is permission.ts.
import * as path from "node:path";
import * as vscode from "vscode";
import type { PermissionUi } from "./permission";

export const PERMISSION_SCHEME = "punie-permission";

/** The texts shown for permission questions, served read-only; the oldest are dropped. */
export class PermissionTexts implements vscode.TextDocumentContentProvider {
  private texts = new Map<string, string>();
  private next = 0;

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(uri.path) ?? "";
  }

  /** A URI whose document is `text`; `name` keeps the file name, so the language is recognised. */
  put(name: string, text: string): vscode.Uri {
    const key = `/${this.next++}/${name}`;
    this.texts.set(key, text);
    while (this.texts.size > 16) this.texts.delete(this.texts.keys().next().value as string);
    return vscode.Uri.from({ scheme: PERMISSION_SCHEME, path: key });
  }
}

export class VscodePermissionUi implements PermissionUi {
  constructor(private texts: PermissionTexts) {}

  modal(title: string, detail: string, buttons: string[]): Thenable<string | undefined> {
    // VS Code adds its own Cancel button to a modal dialog: that answer (undefined) is Deny.
    return vscode.window.showWarningMessage(title, { modal: true, detail }, ...buttons);
  }

  notify(message: string, buttons: string[]): Thenable<string | undefined> {
    return vscode.window.showWarningMessage(message, ...buttons);
  }

  async showDiff(uri: string, before: string, after: string, title: string): Promise<void> {
    const name = path.posix.basename(vscode.Uri.parse(uri).path);
    const left = this.texts.put(`current/${name}`, before);
    const right = this.texts.put(`proposed/${name}`, after);
    await vscode.commands.executeCommand("vscode.diff", left, right, title, { preview: true });
  }

  async showText(text: string, title: string): Promise<void> {
    const uri = this.texts.put(`${title.replace(/[^\w.-]+/g, "-").slice(0, 60)}.txt`, text);
    const document = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(document, { preview: true });
  }
}
