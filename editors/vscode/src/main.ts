// The Punie client: starts `punie lsp`, wires the answer panel, the status bar, the permission
// dialogs and the palette commands. extension.ts only creates and disposes it.
import * as vscode from "vscode";
import * as lc from "vscode-languageclient/node";
import { askArgsOf, prepareAsk } from "./ask";
import { BootstrapError, checkVersion, findServer, realEnv } from "./bootstrap";
import { needsRestart, serverSettings, SettingsReader } from "./config";
import * as ext from "./lsp_ext";
import { AnswerPanel } from "./panel";
import { askPermission } from "./permission";
import { PERMISSION_SCHEME, PermissionTexts, VscodePermissionUi } from "./permission_ui";
import { CONTINUE_QUESTION, followUpQuestion, RunStore, type Run } from "./runs";
import { CANCEL_CLIENT_COMMAND, SHOW_PANEL_COMMAND, StatusBar } from "./status";
import { unlinked } from "./unlinked";

export const COMMANDS = {
  ask: "punie.client.ask",
  cancel: CANCEL_CLIENT_COMMAND,
  newConversation: "punie.client.newConversation",
  showLog: "punie.client.showLog",
  restart: "punie.client.restart",
  followUp: "punie.client.followUp",
  showAnswers: SHOW_PANEL_COMMAND,
} as const;

/** What activate() returns: used by the extension-host tests, and by other extensions if they like. */
export interface PunieApi {
  readonly store: RunStore;
  readonly panel: AnswerPanel;
  client(): lc.LanguageClient | undefined;
  /** Resolves when the server is running (or start failed: then rejects). */
  ready(): Promise<void>;
  startRun(args: ext.AskArgs, display?: { title?: string; question?: string }): Promise<Run | undefined>;
}

/** Punie's settings, as the user's alone where a workspace may not choose (config.ts). */
const settings = (scope?: vscode.ConfigurationScope) =>
  new SettingsReader((k) => vscode.workspace.getConfiguration(ext.CONFIG_SECTION, scope).inspect(k), vscode.workspace.isTrusted);

export class Punie implements vscode.Disposable, PunieApi {
  readonly store = new RunStore();
  readonly output = vscode.window.createOutputChannel("Punie", { log: true });
  readonly panel: AnswerPanel;
  private status: StatusBar;
  private lc: lc.LanguageClient | undefined;
  private starting: Promise<void> | undefined;
  private progressSubs = new Map<Run, vscode.Disposable[]>();
  private subs: vscode.Disposable[] = [];
  private permissionTexts = new PermissionTexts();
  /** Settings whose workspace value this window has already said it ignores. */
  private warnedIgnored = new Set<string>();

  constructor(private ctx: vscode.ExtensionContext) {
    this.panel = new AnswerPanel(this.store, {
      followUp: () => void this.followUp(),
      continueAnswer: (run) => void this.continueAnswer(run),
      newConversation: () => this.newConversation(),
    });
    this.status = new StatusBar(this.store);
    this.subs.push(this.output, this.panel, this.status);
    this.store.onChange((run) => {
      if (run.state !== "starting" && run.state !== "running" && run.markdown) this.dropProgress(run);
    });
  }

  activate(): PunieApi {
    const reg = (id: string, fn: (...a: any[]) => unknown) => this.subs.push(vscode.commands.registerCommand(id, fn));
    reg(COMMANDS.ask, (question?: string) => this.askFromEditor(question));
    reg(COMMANDS.cancel, () => this.cancelCommand());
    reg(COMMANDS.newConversation, () => this.newConversation());
    reg(COMMANDS.showLog, () => this.output.show(true));
    reg(COMMANDS.restart, () => this.restart());
    reg(COMMANDS.followUp, () => this.followUp());
    reg(COMMANDS.showAnswers, () => this.panel.reveal());
    this.subs.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration(ext.CONFIG_SECTION)) this.warnIgnoredWorkspaceSettings();
        if (needsRestart((s) => e.affectsConfiguration(s))) void this.restart();
      }),
      vscode.workspace.registerTextDocumentContentProvider(PERMISSION_SCHEME, this.permissionTexts),
      // Trusting the workspace lifts "every write and command asks": tell the server.
      vscode.workspace.onDidGrantWorkspaceTrust(() => void this.sendSettings()),
    );
    this.starting = this.start();
    this.starting.catch(() => undefined);
    return this;
  }

  client(): lc.LanguageClient | undefined {
    return this.lc;
  }

  ready(): Promise<void> {
    return this.starting ?? this.start();
  }

  // ---------- server lifecycle ----------

  private async start(): Promise<void> {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    let binary: string;
    let version: string;
    this.warnIgnoredWorkspaceSettings();
    try {
      const serverPath = settings().get("serverPath");
      binary = findServer(typeof serverPath === "string" ? serverPath : undefined, this.ctx.extensionPath, realEnv(), folder);
      version = await checkVersion(binary);
    } catch (e) {
      const msg = e instanceof BootstrapError ? e.message : `Punie: could not start the server: ${String(e)}`;
      this.output.appendLine(msg);
      void vscode.window.showErrorMessage(unlinked(msg), "Open Settings", "Show Log").then((pick) => {
        if (pick === "Open Settings") void vscode.commands.executeCommand("workbench.action.openSettings", "punie.serverPath");
        if (pick === "Show Log") this.output.show(true);
      });
      throw e;
    }
    this.output.appendLine(`Punie: starting ${binary} lsp (${version})`);
    const serverOptions: lc.ServerOptions = {
      // No `transport`: TransportKind.stdio would append --stdio; `punie lsp` speaks stdio anyway.
      command: binary,
      args: ["lsp"],
      options: { cwd: folder },
    };
    const settingsFor = (scope?: vscode.ConfigurationScope) => serverSettings(settings(scope));
    const clientOptions: lc.LanguageClientOptions = {
      documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
      outputChannel: this.output,
      initializationOptions: () => settingsFor(),
      synchronize: { configurationSection: ext.CONFIG_SECTION },
      middleware: {
        executeCommand: (command, args, next) => this.executeCommand(command, args, next),
        workspace: {
          configuration: async (params, token, next) => {
            const res = await next(params, token);
            if (!Array.isArray(res)) return res;
            return params.items.map((item, i) => {
              if (item.section !== ext.CONFIG_SECTION) return res[i];
              const scope = item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined;
              return settingsFor(scope);
            });
          },
          // Never `next`: it would send getConfiguration('punie') as it is, a workspace's values too.
          didChangeConfiguration: async () => {
            await client.sendNotification(lc.DidChangeConfigurationNotification.type, {
              settings: { [ext.CONFIG_SECTION]: settingsFor() },
            });
          },
        },
      },
    };
    const client = new lc.LanguageClient("punie", "Punie", serverOptions, clientOptions);
    client.registerFeature({
      fillClientCapabilities(caps: lc.ClientCapabilities) {
        caps.experimental = {
          ...(caps.experimental as object | undefined),
          [ext.ANSWER_CAPABILITY]: true,
          [ext.PERMISSION_CAPABILITY]: true,
          // serverPath, engine, toolPolicy, maxTurns and the sandbox's limits have machine or
          // application scope, and every read of them takes the user's value only
          // (SettingsReader): a workspace's settings cannot set them, so the server may let
          // toolPolicy loosen its policy and the limits go past their defaults.
          [ext.USER_SETTINGS_CAPABILITY]: true,
        };
      },
      initialize() {},
      getState: () => ({ kind: "static" }),
      clear() {},
    });
    client.onNotification(ext.answer, (p) => this.onAnswer(p));
    const permissionUi = new VscodePermissionUi(this.permissionTexts);
    client.onRequest(ext.permission, async (p) => ({ answer: await askPermission(p, permissionUi) }));
    // Permission questions (Allow / Allow for this session / Deny) are modal; others stay notifications.
    client.onRequest(lc.ShowMessageRequest.type, (p) => this.showMessageRequest(p));
    // The client's own handler would show the text as it came; the server's messages quote
    // paths and setting values, which a cloned repository chooses.
    client.onNotification(lc.ShowMessageNotification.type, (p) => this.showMessage(p));
    this.lc = client;
    await client.start();
  }

  private async stop(): Promise<void> {
    const client = this.lc;
    this.lc = undefined;
    if (client) {
      try {
        await client.stop(5000);
      } catch (e) {
        this.output.appendLine(`Punie: stopping the server: ${String(e)}`);
      }
      await client.dispose().catch(() => undefined);
    }
    for (const run of this.store.active()) {
      this.store.applyProgress(run, { kind: "end", message: "cancelled" });
      if (!run.markdown) run.markdown = "_The server was restarted before this run ended._";
    }
  }

  async restart(): Promise<void> {
    this.output.appendLine("Punie: restarting the server");
    await this.starting?.catch(() => undefined);
    await this.stop();
    this.starting = this.start();
    this.starting.catch(() => undefined);
    await this.starting;
  }

  /** Sends the current settings (didChangeConfiguration); the server pulls them where it can. */
  private async sendSettings(): Promise<void> {
    const client = this.lc;
    if (!client?.isRunning()) return;
    await client.sendNotification(lc.DidChangeConfigurationNotification.type, {
      settings: { [ext.CONFIG_SECTION]: serverSettings(settings()) },
    });
  }

  /** Says once per setting that the workspace's value of a user-only setting is ignored. */
  private warnIgnoredWorkspaceSettings(): void {
    const fresh = [...settings().readAll().ignored].filter((k) => !this.warnedIgnored.has(k));
    if (fresh.length === 0) return;
    for (const k of fresh) this.warnedIgnored.add(k);
    const keys = fresh.map((k) => `punie.${k}`).join(", ");
    const why = vscode.workspace.isTrusted
      ? "only your user settings choose Punie's program, engine, tool policy and limits"
      : "only your user settings choose Punie's program, engine, tool policy and limits, and in Restricted Mode its profile";
    const msg = `Punie: ignored this workspace's ${keys}: ${why}.`;
    this.output.appendLine(msg);
    void vscode.window.showWarningMessage(msg);
  }

  // ---------- runs ----------

  private async executeCommand(command: string, args: any[], next: (command: string, args: any[]) => vscode.ProviderResult<any>) {
    const a = command === ext.ASK_COMMAND ? askArgsOf(args) : undefined;
    if (!a) return next(command, args);
    const prepared = await prepareAsk(a, (o) => vscode.window.showInputBox({ ...o, ignoreFocusOut: true }));
    if (!prepared) return undefined;
    const run = await this.startRun(prepared);
    return run?.runId ? { runId: run.runId, token: run.token } : undefined;
  }

  /** Sends punie.ask with our own workDoneToken, so that the run's progress comes to us. */
  async startRun(args: ext.AskArgs, display?: { title?: string; question?: string }): Promise<Run | undefined> {
    await this.ready().catch(() => undefined);
    const client = this.lc;
    if (!client || !client.isRunning()) {
      void vscode.window.showErrorMessage("Punie: the server is not running. See Punie: Show log, or run Punie: Restart server.");
      return undefined;
    }
    const run = this.store.start(args, display);
    this.panel.show(run);
    this.listenProgress(client, run, run.token);
    try {
      const res = (await client.sendRequest(lc.ExecuteCommandRequest.type, {
        command: ext.ASK_COMMAND,
        arguments: [args],
        workDoneToken: run.token,
      })) as ext.AskResult | null;
      if (!res || typeof res.runId !== "string") throw new Error("the server did not return a runId");
      if (res.token !== undefined && String(res.token) !== run.token) this.listenProgress(client, run, res.token);
      this.store.started(run, res.runId, res.token);
    } catch (e) {
      const msg = e instanceof lc.ResponseError ? e.message : e instanceof Error ? e.message : String(e);
      this.store.rejected(run, msg);
      this.dropProgress(run);
      void vscode.window.showErrorMessage(unlinked(`Punie: ${msg}`));
    }
    return run;
  }

  private listenProgress(client: lc.LanguageClient, run: Run, token: lc.ProgressToken): void {
    const d = client.onProgress(lc.WorkDoneProgress.type, token, (v) => this.store.applyProgress(run, v));
    const list = this.progressSubs.get(run) ?? [];
    list.push(d);
    this.progressSubs.set(run, list);
  }

  private dropProgress(run: Run): void {
    for (const d of this.progressSubs.get(run) ?? []) d.dispose();
    this.progressSubs.delete(run);
  }

  private onAnswer(p: ext.AnswerParams): void {
    let run = this.store.answer(p);
    if (!run && !this.store.active().some((r) => r.runId === undefined)) {
      // A run this window did not start (or one from before a reload): show it anyway.
      const args: ext.AskArgs = { uri: p.uri, range: p.range, instruction: "ask" };
      run = this.store.start(args, { title: "Answer" });
      this.store.started(run, p.runId);
      this.store.answer(p);
    }
    if (!run) return;
    this.panel.show(run);
    if (p.status === "failed") {
      void vscode.window.showErrorMessage(unlinked(`Punie: ${run.title}: ${p.markdown.split("\n")[0]}`), "Show Log").then((pick) => {
        if (pick) this.output.show(true);
      });
    }
  }

  private async askFromEditor(question?: string): Promise<Run | undefined> {
    const editor = vscode.window.activeTextEditor;
    if (!editor) {
      void vscode.window.showErrorMessage("Punie: open a file and select the code to ask about first.");
      return undefined;
    }
    let range: vscode.Range = editor.selection;
    if (range.isEmpty) range = editor.document.lineAt(range.start.line).range;
    const args: ext.AskArgs = {
      uri: editor.document.uri.toString(),
      range: { start: { line: range.start.line, character: range.start.character }, end: { line: range.end.line, character: range.end.character } },
      instruction: "ask",
      ...(question ? { question } : {}),
    };
    const prepared = await prepareAsk(args, (o) => vscode.window.showInputBox({ ...o, ignoreFocusOut: true }));
    return prepared ? this.startRun(prepared) : undefined;
  }

  private async followUp(): Promise<Run | undefined> {
    const last = [...this.panel.shown].reverse().find((r) => r.state !== "failed") ?? this.panel.shown.at(-1);
    if (!last) return this.askFromEditor();
    const q = await vscode.window.showInputBox({
      title: "Ask Punie a follow-up",
      prompt: `About: ${last.title}`,
      placeHolder: "e.g. Can you show it without the loop?",
      ignoreFocusOut: true,
    });
    if (!q || q.trim() === "") return undefined;
    const question = followUpQuestion(this.panel.shown, q.trim());
    return this.startRun({ uri: last.args.uri, range: last.args.range, instruction: "ask", question }, { title: q.trim(), question: q.trim() });
  }

  /** "Continue" on an answer that was cut: a follow-up that asks for the rest. */
  private continueAnswer(run: Run): Promise<Run | undefined> {
    const question = followUpQuestion(this.panel.shown, CONTINUE_QUESTION);
    return this.startRun(
      { uri: run.args.uri, range: run.args.range, instruction: "ask", question },
      { title: `Continue: ${run.title}`, question: "Continue" },
    );
  }

  private newConversation(): void {
    this.store.clearFinished();
    this.panel.clear();
    // The server keeps the conversation that free-form questions continue; ask it to forget.
    const client = this.lc;
    if (client) {
      void client
        .sendRequest(lc.ExecuteCommandRequest.type, { command: ext.NEW_CONVERSATION_COMMAND, arguments: [] })
        .catch(() => undefined);
    }
    void vscode.window.setStatusBarMessage("Punie: new conversation", 2000);
  }

  private async cancelCommand(): Promise<void> {
    const active = this.store.active();
    if (active.length === 0) {
      void vscode.window.showInformationMessage("Punie: no run in progress.");
      return;
    }
    let run: Run | undefined = active[0];
    if (active.length > 1) {
      const pick = await vscode.window.showQuickPick(
        active.map((r) => ({ label: r.title, description: r.message, run: r })),
        { title: "Cancel which Punie run?" },
      );
      run = pick?.run;
    }
    if (run) await this.cancel(run);
  }

  async cancel(run: Run): Promise<void> {
    const client = this.lc;
    if (!client) return;
    if (run.runId) {
      const args: ext.CancelArgs = { runId: run.runId };
      await client.sendRequest(lc.ExecuteCommandRequest.type, { command: ext.CANCEL_COMMAND, arguments: [args] });
    } else {
      await client.sendNotification(lc.WorkDoneProgressCancelNotification.type, { token: run.token });
    }
  }

  private showMessage(p: lc.ShowMessageParams): void {
    void showerOf(p.type)(unlinked(p.message));
  }

  private async showMessageRequest(p: lc.ShowMessageRequestParams): Promise<lc.MessageActionItem | null> {
    const actions = p.actions ?? [];
    const titles = actions.map((a) => a.title);
    const permission = ext.PERMISSION_ACTIONS.every((t) => titles.includes(t));
    const show = showerOf(permission && p.type !== lc.MessageType.Error ? lc.MessageType.Warning : p.type);
    // In a modal dialog VS Code adds its own Cancel button: that answer (undefined) means Deny.
    const pick = permission
      ? await show(p.message, { modal: true, detail: "Deny (or Cancel) makes the tool raise PermissionError; the run goes on." }, ...actions)
      : await show(unlinked(p.message), ...actions);
    return pick ?? null;
  }

  async dispose(): Promise<void> {
    await this.stop();
    for (const s of this.subs) s.dispose();
  }
}

/** How VS Code shows a message of LSP type `type`. */
function showerOf(type: lc.MessageType): typeof vscode.window.showInformationMessage {
  if (type === lc.MessageType.Error) return vscode.window.showErrorMessage;
  if (type === lc.MessageType.Warning) return vscode.window.showWarningMessage;
  return vscode.window.showInformationMessage;
}
