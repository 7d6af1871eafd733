import * as assert from "node:assert/strict";
import { askArgsOf, prepareAsk, type PromptFn } from "../../src/ask";
import type { AskArgs } from "../../src/lsp_ext";

const range = { start: { line: 0, character: 0 }, end: { line: 2, character: 0 } };
const answers = (...a: (string | undefined)[]): PromptFn & { calls: number } => {
  const f = (() => {
    f.calls += 1;
    return Promise.resolve(a.shift());
  }) as unknown as PromptFn & { calls: number };
  f.calls = 0;
  return f;
};

describe("ask middleware", () => {
  for (const instruction of ["explain", "fix", "tests", "refactor"] as const) {
    it(`${instruction} goes straight through`, async () => {
      const p = answers("never");
      const a: AskArgs = { uri: "file:///a.py", range, instruction };
      assert.equal(await prepareAsk(a, p), a);
      assert.equal(p.calls, 0);
    });
  }
  it("Ask Punie… asks for the question", async () => {
    const p = answers("  why?  ");
    assert.deepEqual(await prepareAsk({ uri: "file:///a.py", range, instruction: "ask" }, p), {
      uri: "file:///a.py", range, instruction: "ask", question: "why?",
    });
    assert.equal(p.calls, 1);
  });
  it("dismissing the input box sends nothing", async () => {
    assert.equal(await prepareAsk({ uri: "file:///a.py", range, instruction: "ask" }, answers(undefined)), undefined);
  });
  it("an empty question lets the server use the selected text", async () => {
    assert.deepEqual(await prepareAsk({ uri: "file:///a.py", range, instruction: "ask", question: "" }, answers("")), {
      uri: "file:///a.py", range, instruction: "ask",
    });
  });
  it("a question already given is not asked again", async () => {
    const p = answers("x");
    await prepareAsk({ uri: "file:///a.py", range, instruction: "ask", question: "given" }, p);
    assert.equal(p.calls, 0);
  });
  it("reads the command argument", () => {
    assert.equal(askArgsOf([]), undefined);
    assert.equal(askArgsOf([{ uri: 1 }]), undefined);
    assert.ok(askArgsOf([{ uri: "file:///a", range, instruction: "fix" }]));
  });
});
