//! What a Markdown client shows of a text, as Zed shows it: its Markdown element parses with
//! pulldown-cmark, and makes a link of every URL in text. The one copy of that view, for the
//! end-to-end tests of what the LSP and ACP front ends send and for the unit tests of
//! `policy::markdown_literal`, which include this file (`#[path]`).

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

/// What a Markdown client shows of `markdown`: its text and code, a soft break as a space, a
/// hard one as a new line, Punie's own quotes that smart punctuation curled put back; and every
/// other element, a link above all, and a URL in text, which Zed makes a link of. Rendered with
/// every extension pulldown-cmark has (Zed's among them: GFM, smart punctuation, footnotes,
/// super- and subscript) and as plain CommonMark: where the two differ, that is an element too.
pub(crate) fn as_markdown_shows(markdown: &str) -> (String, Vec<String>) {
    let (text, mut other) = shows_with(markdown, Options::all());
    let (plain, plain_other) = shows_with(markdown, Options::empty());
    if plain != text {
        other.push(format!("plain CommonMark shows {plain:?}"));
    }
    other.extend(
        plain_other
            .into_iter()
            .map(|element| format!("plain CommonMark: {element}")),
    );
    (text, other)
}

fn shows_with(markdown: &str, options: Options) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut other = Vec::new();
    let mut in_code_block = false;
    for event in Parser::new_ext(markdown, options) {
        match event {
            Event::Text(words) if in_code_block => text.push_str(&words),
            Event::Text(words) => {
                if words.contains("://") || words.contains("www.") {
                    other.push(format!("a URL in text: {words:?}"));
                }
                text.push_str(&words.replace(['“', '”'], "\"").replace(['‘', '’'], "'"));
            }
            Event::Code(code) => text.push_str(&code),
            Event::HardBreak => text.push('\n'),
            Event::SoftBreak => text.push(' '),
            Event::Start(Tag::CodeBlock(_)) => in_code_block = true,
            Event::End(TagEnd::CodeBlock) => in_code_block = false,
            Event::Start(Tag::Paragraph) => {}
            Event::End(TagEnd::Paragraph) => text.push('\n'),
            event => other.push(format!("{event:?}")),
        }
    }
    // A code block's text and a paragraph both end with a line break.
    text.pop();
    (text, other)
}
