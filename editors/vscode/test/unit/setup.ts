// Mocha --require: makes `require("vscode")` return a small stub of the API, so that the
// extension's modules load outside VS Code. Tests inspect and reset `stub` through `vscodeStub`.
import Module from "node:module";

export interface FakeStatusBarItem {
  text: string; tooltip?: string; command?: string; name?: string; visible: boolean;
  show(): void; hide(): void; dispose(): void;
}
export interface FakeWebviewPanel {
  webview: { html: string; cspSource: string; posted: unknown[]; postMessage(m: unknown): Promise<boolean>;
    onDidReceiveMessage(fn: (m: unknown) => void): { dispose(): void }; receive(m: unknown): void };
  visible: boolean; revealed: number; reveal(): void; dispose(): void; onDidDispose(fn: () => void): { dispose(): void };
}

export const vscodeStub = {
  statusItems: [] as FakeStatusBarItem[],
  panels: [] as FakeWebviewPanel[],
  clipboard: "",
  inputBoxAnswers: [] as (string | undefined)[],
  reset() {
    this.statusItems.length = 0;
    this.panels.length = 0;
    this.clipboard = "";
    this.inputBoxAnswers.length = 0;
  },
};

const api = {
  StatusBarAlignment: { Left: 1, Right: 2 },
  ViewColumn: { Active: -1, Beside: -2, One: 1 },
  Disposable: class { constructor(private fn: () => void) {} dispose() { this.fn(); } },
  window: {
    createStatusBarItem(): FakeStatusBarItem {
      const item: FakeStatusBarItem = {
        text: "", visible: false,
        show() { item.visible = true; }, hide() { item.visible = false; }, dispose() { item.visible = false; },
      };
      vscodeStub.statusItems.push(item);
      return item;
    },
    createWebviewPanel(): FakeWebviewPanel {
      let onMsg: (m: unknown) => void = () => undefined;
      const panel: FakeWebviewPanel = {
        webview: {
          html: "", cspSource: "vscode-webview:", posted: [],
          postMessage(m) { panel.webview.posted.push(m); return Promise.resolve(true); },
          onDidReceiveMessage(fn) { onMsg = fn; return { dispose() {} }; },
          receive(m) { onMsg(m); },
        },
        visible: true, revealed: 0,
        reveal() { panel.revealed += 1; }, dispose() {}, onDidDispose() { return { dispose() {} }; },
      };
      vscodeStub.panels.push(panel);
      return panel;
    },
    setStatusBarMessage() { return { dispose() {} }; },
    showInputBox() { return Promise.resolve(vscodeStub.inputBoxAnswers.shift()); },
  },
  env: { clipboard: { writeText(t: string) { vscodeStub.clipboard = t; return Promise.resolve(); } } },
};

type Loader = (request: string, parent: unknown, isMain: boolean) => unknown;
const M = Module as unknown as { _load: Loader };
const orig = M._load;
M._load = function (request, parent, isMain) {
  if (request === "vscode") return api;
  return orig.call(this, request, parent, isMain);
};
(globalThis as Record<string, unknown>).__vscodeStub = vscodeStub;
