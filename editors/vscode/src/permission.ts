// Permission questions (`punie/permission`): a modal dialog with the server's text, and before
// Allow/Deny, "Show diff" (VS Code's diff editor on the current and the proposed text) and
// "Show details" (the whole text, when the dialog's is cut). What is shown is the server's:
// the client adds nothing and leaves nothing out. Free of the vscode API (see `PermissionUi`)
// so that the flow is unit-tested directly.
import type { PermissionAnswer, PermissionParams } from "./lsp_ext";
import { unlinked } from "./unlinked";

export const SHOW_DIFF = "Show diff";
export const SHOW_DETAILS = "Show details";
export const ALLOW = "Allow";
export const ALLOW_SESSION = "Allow for this session";
export const DENY = "Deny";

/** What the flow needs from VS Code. */
export interface PermissionUi {
  /** A modal dialog: `title` with `detail` under it, the buttons; undefined when dismissed. */
  modal(title: string, detail: string, buttons: string[]): Thenable<string | undefined>;
  /**
   * A notification that stays while the user reads what was opened; undefined when closed.
   * VS Code makes links of `[label](command:…)` in it: `message` has been through `unlinked`.
   */
  notify(message: string, buttons: string[]): Thenable<string | undefined>;
  /** Opens the diff editor: `before` (empty for a new file) against `after`, for `uri`. */
  showDiff(uri: string, before: string, after: string, title: string): Thenable<void>;
  /** Opens the whole text read-only. */
  showText(text: string, title: string): Thenable<void>;
}

/** The dialog's text below its title line. */
export function detailOf(p: PermissionParams): string {
  const lines = p.message.split("\n");
  const rest = lines[0] === p.title ? lines.slice(1) : lines;
  return rest.join("\n");
}

/** The buttons, in order: what can be looked at first, then the answers the server offers. */
export function buttonsOf(p: PermissionParams): string[] {
  const res: string[] = [];
  if (p.change) res.push(SHOW_DIFF);
  if (p.cut) res.push(SHOW_DETAILS);
  res.push(ALLOW);
  if (p.session !== null) res.push(ALLOW_SESSION);
  res.push(DENY);
  return res;
}

export function answerOf(pick: string | undefined, p: PermissionParams): PermissionAnswer {
  if (pick === ALLOW) return "allow";
  if (pick === ALLOW_SESSION && p.session !== null) return "allowSession";
  // Deny, Cancel, a closed notification.
  return "deny";
}

/**
 * Asks `p`: a modal dialog first; "Show diff" or "Show details" opens what they name and asks
 * again in a notification, so that the user can scroll what was opened before answering (a
 * modal dialog would block the editor). The title names a model-chosen path or command, so the
 * notification's text is `unlinked`.
 */
export async function askPermission(p: PermissionParams, ui: PermissionUi): Promise<PermissionAnswer> {
  const buttons = buttonsOf(p);
  let pick = await ui.modal(p.title, detailOf(p), buttons);
  while (pick === SHOW_DIFF || pick === SHOW_DETAILS) {
    if (pick === SHOW_DIFF && p.change) {
      await ui.showDiff(p.change.uri, p.change.before ?? "", p.change.after, `${p.title} (current ↔ proposed)`);
    } else {
      await ui.showText(p.details, p.title);
    }
    pick = await ui.notify(unlinked(`${p.title}: allow it?`), buttons);
  }
  return answerOf(pick, p);
}
