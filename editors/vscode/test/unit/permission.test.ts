// The permission flow (punie/permission) against a fake UI: what is shown, in what order, and
// which answer goes back.
import * as assert from "node:assert/strict";
import { ALLOW, ALLOW_SESSION, DENY, SHOW_DETAILS, SHOW_DIFF, askPermission, buttonsOf, detailOf, type PermissionUi } from "../../src/permission";
import type { PermissionParams } from "../../src/lsp_ext";
import { unlinked } from "../../src/unlinked";

/** VS Code's link pattern for notifications (`LINK_REGEX` in src/vs/base/common/linkedText.ts). */
const VSCODE_LINK = /\[([^\]]+)\]\(((?:https?:\/\/|command:|file:)[^\)\s]+)(?: (["'])(.+?)(\3))?\)/gi;
const links = (text: string) => [...text.matchAll(VSCODE_LINK)].map((m) => m[0]);

const write: PermissionParams = {
  runId: "run-1",
  tool: "write_file",
  kind: "write",
  title: "Punie wants to write src/calc.py",
  message: 'Punie wants to write src/calc.py\nChange: 1 line added, 1 removed\n"Allow for this session" covers write_file on src/calc.py',
  details: "…whole diff…",
  cut: false,
  session: "write_file on src/calc.py",
  change: { uri: "file:///ws/src/calc.py", before: "a - b\n", after: "a + b\n", summary: "1 line added, 1 removed" },
};

const command: PermissionParams = {
  ...write,
  tool: "run_command",
  kind: "execute",
  title: "Punie wants to run: python -c AAAA… [9710 more characters not shown]",
  message: "Punie wants to run: python -c AAAA… [9710 more characters not shown]\nWorking directory: .\nOnly this call can be allowed; it is not remembered.",
  details: "Punie wants to run: python -c " + "A".repeat(10000),
  cut: true,
  session: null,
  change: null,
};

/** A UI that answers from `picks` in order and records what it was asked to do. */
function fakeUi(picks: (string | undefined)[]) {
  const seen: string[] = [];
  const ui: PermissionUi = {
    modal: (title, detail, buttons) => {
      seen.push(`modal ${title} | ${detail} | ${buttons.join(", ")}`);
      return Promise.resolve(picks.shift());
    },
    notify: (message, buttons) => {
      seen.push(`notify ${message} | ${buttons.join(", ")}`);
      return Promise.resolve(picks.shift());
    },
    showDiff: (uri, before, after, title) => {
      seen.push(`diff ${uri} ${JSON.stringify(before)} -> ${JSON.stringify(after)} (${title})`);
      return Promise.resolve();
    },
    showText: (text, title) => {
      seen.push(`text ${text.length} chars (${title})`);
      return Promise.resolve();
    },
  };
  return { ui, seen };
}

describe("permission", () => {
  it("offers the diff first, then the answers the server offers", () => {
    assert.deepEqual(buttonsOf(write), [SHOW_DIFF, ALLOW, ALLOW_SESSION, DENY]);
    assert.deepEqual(buttonsOf(command), [SHOW_DETAILS, ALLOW, DENY]);
    assert.equal(detailOf(write), 'Change: 1 line added, 1 removed\n"Allow for this session" covers write_file on src/calc.py');
  });

  it("shows the diff before Allow, and asks again while it is open", async () => {
    const { ui, seen } = fakeUi([SHOW_DIFF, ALLOW]);
    assert.equal(await askPermission(write, ui), "allow");
    assert.deepEqual(seen, [
      `modal Punie wants to write src/calc.py | ${detailOf(write)} | Show diff, Allow, Allow for this session, Deny`,
      'diff file:///ws/src/calc.py "a - b\\n" -> "a + b\\n" (Punie wants to write src/calc.py (current ↔ proposed))',
      "notify Punie wants to write src/calc.py: allow it? | Show diff, Allow, Allow for this session, Deny",
    ]);
  });

  it("shows the whole text of a cut question", async () => {
    const { ui, seen } = fakeUi([SHOW_DETAILS, DENY]);
    assert.equal(await askPermission(command, ui), "deny");
    assert.equal(seen[1], `text ${command.details.length} chars (${command.title})`);
  });

  it("a session answer only where offered; a dismissed dialog is Deny", async () => {
    assert.equal(await askPermission(write, fakeUi([ALLOW_SESSION]).ui), "allowSession");
    assert.equal(await askPermission(command, fakeUi([ALLOW_SESSION]).ui), "deny");
    assert.equal(await askPermission(write, fakeUi([undefined]).ui), "deny");
    assert.equal(await askPermission(write, fakeUi([SHOW_DIFF, undefined]).ui), "deny");
  });

  it("asks again in a notification with no link a model's path could plant", async () => {
    // A model-chosen file name, quoted by the server as a shell word.
    const planted = `'notes [Allow](command:workbench.extensions.installExtension?%22evil.pub%22 "Allow this call").txt'`;
    const p: PermissionParams = { ...write, title: `Punie wants to write ${planted}`, message: `Punie wants to write ${planted}` };
    assert.equal(links(p.title).length, 1, "the pattern finds the planted link");
    const { ui, seen } = fakeUi([SHOW_DIFF, DENY]);
    assert.equal(await askPermission(p, ui), "deny");
    const notified = seen.filter((s) => s.startsWith("notify "));
    assert.equal(notified.length, 1);
    assert.deepEqual(links(notified[0]), []);
    assert.ok(notified[0].includes("[Allow]\\(command:workbench.extensions.installExtension"), notified[0]);
  });

  it("unlinked leaves no link of any form VS Code parses", () => {
    for (const text of ["[a](command:x)", "[a](https://e.example)", "[[a]](file:/etc/passwd 'x')", "[a]](command:x)", "[a]\\(command:x)"]) {
      assert.deepEqual(links(unlinked(text)), [], text);
    }
    assert.equal(unlinked("plain (text) [x] y"), "plain (text) [x] y");
  });
});
