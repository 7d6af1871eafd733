// Text for VS Code's non-modal messages, which turn `[label](command:ID?ARGS)` into a link that
// runs any command when clicked. A file name, a path, a setting's value or a run's title can
// come from a model or a cloned repository, so every non-modal message goes through `unlinked`.
// VS Code's parser (`parseLinkedText`, src/vs/base/common/linkedText.ts) honours no escapes:
// a link is `[`, a label, `](` with nothing between `]` and `(`, then the target. A backslash
// put between them leaves no `](` in the text, so nothing parses as a link, and it stays
// visible: the user sees that the text was changed, and markdown renders `]\(` as `](`.
export function unlinked(text: string): string {
  return text.replace(/\]\(/g, "]\\(");
}
