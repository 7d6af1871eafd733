// Activation only: everything else lives in main.ts.
import type * as vscode from "vscode";
import { Punie, type PunieApi } from "./main";

let punie: Punie | undefined;

export function activate(context: vscode.ExtensionContext): PunieApi {
  punie = new Punie(context);
  context.subscriptions.push({ dispose: () => void punie?.dispose() });
  return punie.activate();
}

export async function deactivate(): Promise<void> {
  await punie?.dispose();
  punie = undefined;
}
