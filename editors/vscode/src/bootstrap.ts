// Finds the `punie` binary (setting, then bundled, then PATH) and runs `punie --version` once
// before the client starts, with an error that says what to do.
import * as cp from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

export const INSTALL_HINT =
  "Install Punie (from a checkout: `cargo install --path server`, then `punie models fetch`) so that `punie` is on PATH, or set `punie.serverPath` to the binary.";

export class BootstrapError extends Error {}

export interface Env {
  exists(p: string): boolean;
  pathVar: string | undefined;
  platform: NodeJS.Platform;
  home: string;
}

export const realEnv = (): Env => ({
  exists: (p) => {
    try {
      return fs.statSync(p).isFile();
    } catch {
      return false;
    }
  },
  pathVar: process.env.PATH,
  platform: process.platform,
  home: os.homedir(),
});

/** Expands `~` and `${workspaceFolder}` in a user-given path. */
export function expand(p: string, env: Env, workspaceFolder?: string): string {
  let out = p.trim();
  if (out === "~" || out.startsWith("~/")) out = path.join(env.home, out.slice(1));
  if (workspaceFolder) out = out.split("${workspaceFolder}").join(workspaceFolder);
  return out;
}

/** Searches PATH like the shell does. */
export function which(name: string, env: Env): string | undefined {
  const exe = env.platform === "win32" ? [`${name}.exe`, name] : [name];
  for (const dir of (env.pathVar ?? "").split(path.delimiter)) {
    if (!dir) continue;
    for (const e of exe) {
      const p = path.join(dir, e);
      if (env.exists(p)) return p;
    }
  }
  return undefined;
}

/**
 * The binary to start: `punie.serverPath` when set (it must exist), else a binary bundled under
 * `<extension>/server/`, else `punie` on PATH. Throws BootstrapError with what to do.
 */
export function findServer(
  setting: string | undefined,
  extensionPath: string,
  env: Env,
  workspaceFolder?: string,
): string {
  if (setting && setting.trim() !== "") {
    const p = expand(setting, env, workspaceFolder);
    if (env.exists(p)) return p;
    throw new BootstrapError(
      `Punie: punie.serverPath is set to "${p}", which is not a file. Fix the setting or clear it to use \`punie\` from PATH.`,
    );
  }
  const bundled = path.join(extensionPath, "server", env.platform === "win32" ? "punie.exe" : "punie");
  if (env.exists(bundled)) return bundled;
  const found = which("punie", env);
  if (found) return found;
  throw new BootstrapError(`Punie: the \`punie\` binary was not found. ${INSTALL_HINT}`);
}

/** Runs `punie --version` once; resolves with its first line or rejects with a BootstrapError. */
export function checkVersion(binary: string, timeoutMs = 10000): Promise<string> {
  return new Promise((resolve, reject) => {
    cp.execFile(binary, ["--version"], { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) {
        const why = (stderr || err.message).toString().trim().split("\n")[0];
        reject(new BootstrapError(`Punie: \`${binary} --version\` failed: ${why}. ${INSTALL_HINT}`));
        return;
      }
      resolve(stdout.toString().trim().split("\n")[0] ?? "");
    });
  });
}
