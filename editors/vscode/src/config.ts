// Builds the server settings (initializationOptions, workspace/configuration section `punie`,
// didChangeConfiguration) from VS Code's, as settings.decl.json says (generated, with package.json's
// configuration, from the server's declaration of its settings).
import decl from "../settings.decl.json";

export interface SettingDecl {
  key: string;
  client?: boolean;
  omitEmpty?: boolean;
}

export const SETTINGS: readonly SettingDecl[] = decl.settings as SettingDecl[];

/** Keys the server reads (dotted, without the `punie.` prefix). */
export const SERVER_KEYS: readonly string[] = SETTINGS.filter((s) => !s.client).map((s) => s.key);

/**
 * The nested settings object for the server. `get(key)` returns the effective value of
 * `punie.<key>` (VS Code's getConfiguration('punie').get). Undefined and null values are left out;
 * so is an empty string for keys marked omitEmpty (e.g. engine: empty means "the default model").
 * `trusted`: VS Code's workspace trust, always sent as `untrustedWorkspace`: the server merges
 * settings key by key, so once trust is granted `false` must replace the earlier `true`.
 */
export function serverSettings(get: (key: string) => unknown, trusted = true): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  // Restricted Mode: every write and command asks, whatever the tool policy allows.
  out.untrustedWorkspace = !trusted;
  for (const s of SETTINGS) {
    if (s.client) continue;
    let v = get(s.key);
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
