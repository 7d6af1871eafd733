// Reads Punie's VS Code settings, the user's alone where a workspace may not choose, and builds the
// server settings (initializationOptions, workspace/configuration section `punie`,
// didChangeConfiguration) from them, as settings.decl.json says (generated, with package.json's
// configuration, from the server's declaration of its settings).
import decl from "../settings.decl.json";
import { capabilities, contributes } from "../package.json";

export interface SettingDecl {
  key: string;
  client?: boolean;
  omitEmpty?: boolean;
}

export const SETTINGS: readonly SettingDecl[] = decl.settings as SettingDecl[];

/** Keys the server reads (dotted, without the `punie.` prefix). */
export const SERVER_KEYS: readonly string[] = SETTINGS.filter((s) => !s.client).map((s) => s.key);

/** What VS Code's `getConfiguration('punie').inspect(key)` reports, the levels Punie looks at. */
export interface Inspected {
  defaultValue?: unknown;
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
  workspaceLanguageValue?: unknown;
  workspaceFolderLanguageValue?: unknown;
}

const PROPERTIES: Record<string, { scope?: string }> = contributes.configuration.properties;

/** Keys only the user's settings may set (machine or application scope): the program, the engine, the tool policy, the limits. */
export const USER_ONLY_KEYS: readonly string[] = SETTINGS.map((s) => s.key).filter((k) => {
  const scope = PROPERTIES[`punie.${k}`]?.scope;
  return scope === "machine" || scope === "application";
});

/** Keys an untrusted workspace may not set (Restricted Mode: `restrictedConfigurations`). */
export const RESTRICTED_KEYS: readonly string[] = capabilities.untrustedWorkspaces.restrictedConfigurations.map((k) =>
  k.replace(/^punie\./, ""),
);

/**
 * Every read of a Punie setting goes through `get` here, which reads VS Code's `inspect`, never
 * its `get`. VS Code drops a workspace's machine- and application-scoped values (and, in
 * Restricted Mode, its restrictedConfigurations) only when they are written as dotted keys:
 * `"punie": { "serverPath": … }` in a repository's `.vscode/settings.json` passes that filter
 * (VS Code 1.100), and `getConfiguration('punie').get` reads inside it. So the keys a workspace may
 * not set take the user's value (local or remote machine settings) or the default, and the
 * workspace's value found for one of them is named in `ignored`.
 */
export class SettingsReader {
  /** Keys whose workspace value was ignored. */
  readonly ignored = new Set<string>();

  /** `inspect`: VS Code's getConfiguration('punie', scope).inspect; `trusted`: workspace trust. */
  constructor(
    private inspect: (key: string) => Inspected | undefined,
    readonly trusted: boolean,
  ) {}

  /** The value of `punie.<key>` that Punie uses. */
  get(key: string): unknown {
    const i = this.inspect(key) ?? {};
    if (!workspaceMaySet(key, this.trusted)) {
      const fromWorkspace = [i.workspaceValue, i.workspaceFolderValue, i.workspaceLanguageValue, i.workspaceFolderLanguageValue];
      if (fromWorkspace.some((v) => v !== undefined)) this.ignored.add(key);
      return i.globalValue ?? i.defaultValue;
    }
    return i.workspaceFolderValue ?? i.workspaceValue ?? i.globalValue ?? i.defaultValue;
  }

  /** Reads every declared setting, so that `ignored` names each one the workspace tried to set. */
  readAll(): this {
    for (const s of SETTINGS) this.get(s.key);
    return this;
  }
}

function workspaceMaySet(key: string, trusted: boolean): boolean {
  return !USER_ONLY_KEYS.includes(key) && (trusted || !RESTRICTED_KEYS.includes(key));
}

/**
 * The nested settings object for the server. Undefined and null values are left out; so is an
 * empty string for keys marked omitEmpty (e.g. engine: empty means "the default model").
 * Workspace trust is always sent, as `untrustedWorkspace`: the server merges settings key by key,
 * so once trust is granted `false` must replace the earlier `true`.
 */
export function serverSettings(settings: SettingsReader): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  // Restricted Mode: every write and command asks, whatever the tool policy allows.
  out.untrustedWorkspace = !settings.trusted;
  for (const s of SETTINGS) {
    if (s.client) continue;
    let v = settings.get(s.key);
    if (v === undefined || v === null) continue;
    if (typeof v === "string") {
      v = v.trim();
      if (v === "" && s.omitEmpty) continue;
    }
    const parts = s.key.split(".");
    let o: Record<string, unknown> = out;
    for (const p of parts.slice(0, -1)) {
      if (typeof o[p] !== "object" || o[p] === null) o[p] = {};
      o = o[p] as Record<string, unknown>;
    }
    o[parts[parts.length - 1]] = v;
  }
  return out;
}

/** True when the change touches a setting that needs a server restart (the binary itself). */
export function needsRestart(affects: (section: string) => boolean): boolean {
  return affects("punie.serverPath");
}
