// lsp_ext.ts must mirror the contract's names; package.json must expose the palette commands.
import * as assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as ext from "../../src/lsp_ext";

describe("contract", () => {
  it("mirrors the punie/* and punie.* names of INTERFACES §2", () => {
    assert.equal(ext.ASK_COMMAND, "punie.ask");
    assert.equal(ext.WRITE_ANNOTATION, "punie.write");
    assert.equal(ext.CANCEL_COMMAND, "punie.cancel");
    assert.equal(ext.answer.method, "punie/answer");
    assert.equal(ext.ANSWER_CAPABILITY, "punieAnswer");
    assert.equal(ext.PERMISSION_CAPABILITY, "puniePermission");
    assert.equal(ext.USER_SETTINGS_CAPABILITY, "punieUserSettings");
    assert.equal(ext.permission.method, "punie/permission");
    assert.deepEqual([...ext.PERMISSION_ACTIONS], ["Allow", "Allow for this session", "Deny"]);
    assert.deepEqual([...ext.INSTRUCTIONS], ["explain", "fix", "tests", "refactor", "ask"]);
  });

  it("every punie.* / punie/ name in the contract is known here", () => {
    // docs/INTERFACES.md is the repository's copy of the contract, kept in step with it.
    const text = readFileSync("../../docs/INTERFACES.md", "utf8");
    const names = new Set([...text.matchAll(/`(punie[./][A-Za-z]+)`/g)].map((m) => m[1]));
    const src = readFileSync("src/lsp_ext.ts", "utf8");
    for (const n of names) assert.ok(src.includes(`"${n}"`), `${n} missing from src/lsp_ext.ts`);
  });

  it("contributes the palette commands", () => {
    const pkg = JSON.parse(readFileSync("package.json", "utf8"));
    const titles = pkg.contributes.commands.map((c: { title: string }) => c.title);
    for (const t of ["Ask Punie…", "Cancel", "New conversation", "Show log", "Restart server"]) assert.ok(titles.includes(t), t);
    for (const c of pkg.contributes.commands) assert.equal(c.category, "Punie");
  });
});
