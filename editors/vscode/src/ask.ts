// "Ask Punie…" needs a question: the middleware asks for it with an input box before the server
// gets the command. Preset actions (explain, fix, tests, refactor) go straight through.
import type { AskArgs } from "./lsp_ext";

export type PromptFn = (opts: { title: string; prompt: string; placeHolder: string; value?: string }) => Thenable<string | undefined>;

/**
 * Returns the arguments to send, or undefined when the user dismissed the input box.
 * An empty answer sends no `question`: the server then uses the selected text as the question.
 */
export async function prepareAsk(args: AskArgs, prompt: PromptFn): Promise<AskArgs | undefined> {
  if (args.instruction !== "ask" || (args.question !== undefined && args.question.trim() !== "")) return args;
  const q = await prompt({
    title: "Ask Punie",
    prompt: "Your question about the selection (leave empty to ask the selected text itself)",
    placeHolder: "e.g. Why does this loop never end?",
  });
  if (q === undefined) return undefined;
  const question = q.trim();
  const { question: _drop, ...rest } = args;
  return question === "" ? rest : { ...rest, question };
}

/** Reads the single argument of a punie.ask command (as the server put it in the code action). */
export function askArgsOf(args: unknown[]): AskArgs | undefined {
  const a = args[0] as Partial<AskArgs> | undefined;
  if (!a || typeof a !== "object" || typeof a.uri !== "string" || typeof a.instruction !== "string" || !a.range) return undefined;
  return a as AskArgs;
}
