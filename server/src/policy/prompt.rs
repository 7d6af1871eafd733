//! [`Prompt`]: what the user is asked, as data. Front ends only display it: a dialog shows
//! [`Prompt::message`], a terminal or a "Show details" button [`Prompt::details`], a diff
//! editor [`Prompt::change`]'s two texts.
//!
//! Every text in it is escaped (see `show`) and states the truth: the resolved
//! workspace-relative path (and the spelling the snippet used, when it differs), the whole argv
//! quoted as a shell would show it, the change a write makes, and what "Allow for this
//! session" would cover. A message that has to be short says how much it left out. For a
//! client that may render it as Markdown ([`Prompt::markdown_message`]) every part the request
//! chose is code, so none of it is read as Markdown, and Punie's own words stay as they are.

use super::diff::{self, Before, Diff};
use super::request::{Action, Target, ToolRequest};
use super::scope::Scope;
use super::show::{self, shell_line, shell_word};

/// What kind of thing is asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptKind {
    Read,
    Write,
    Execute,
    Call,
}

impl PromptKind {
    pub fn name(self) -> &'static str {
        match self {
            PromptKind::Read => "read",
            PromptKind::Write => "write",
            PromptKind::Execute => "execute",
            PromptKind::Call => "call",
        }
    }
}

/// A write's change: the texts for a diff editor and the diff for everything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The workspace-relative path written.
    pub path: String,
    pub before: Before,
    /// The proposed text, unescaped (for a diff editor, which shows hidden characters itself).
    pub after: String,
    pub diff: Diff,
}

/// One permission question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub tool: &'static str,
    pub kind: PromptKind,
    /// The escaped subject: a path as a shell word, or the command line.
    pub subject: String,
    /// The working directory of a command, escaped.
    pub cwd: Option<String>,
    /// How the snippet spelled the path, escaped, when that differs from the resolved one.
    pub spelled: Option<String>,
    /// Facts the user must read before answering, one sentence each, in Punie's own words:
    /// nothing in them comes from the request.
    pub notes: Vec<String>,
    pub change: Option<Change>,
    /// What "Allow for this session" covers; `None` when it is not offered (a protected path
    /// that the user's settings turned to ask-every-time, a file named like a secret).
    pub session: Option<Scope>,
    /// What marks the file a read is about as a secret (`.env`): no setting allows this read,
    /// so a front end with no one to ask says so instead of naming a flag.
    pub secret: Option<&'static str>,
}

/// How much of the subject a dialog shows by default.
pub const DIALOG_SUBJECT_CHARS: usize = 300;

impl Prompt {
    /// The prompt for `request`. `session`: what "Allow for this session" would cover.
    pub(crate) fn new(request: &ToolRequest, session: Option<Scope>, notes: Vec<String>) -> Prompt {
        let tool = request.tool.name();
        let mut prompt = Prompt {
            tool,
            kind: PromptKind::Call,
            subject: String::new(),
            cwd: None,
            spelled: None,
            notes: Vec::new(),
            change: None,
            session,
            secret: None,
        };
        match &request.action {
            Action::Read { target } => {
                prompt.kind = PromptKind::Read;
                prompt.subject = shell_word(&target.rel);
                prompt.secret = target.secret;
                prompt.spelled = spelling(target);
            }
            Action::Write {
                target,
                before,
                after,
            } => {
                prompt.kind = PromptKind::Write;
                prompt.subject = shell_word(&target.rel);
                prompt.spelled = spelling(target);
                prompt.change = Some(Change {
                    path: target.rel.clone(),
                    before: before.clone(),
                    after: after.clone(),
                    diff: diff::diff(&target.rel, before, after),
                });
            }
            Action::Execute { argv, cwd } => {
                prompt.kind = PromptKind::Execute;
                prompt.subject = shell_line(argv);
                prompt.cwd = Some(shell_word(cwd));
            }
            Action::Call { args } => {
                prompt.subject = call_text(tool, args);
            }
        }
        prompt.notes = notes;
        prompt
    }

    /// The first line: `Punie wants to write src/app.py`, with the subject cut to
    /// `max_subject_chars` and a note of what was cut.
    pub fn headline(&self, max_subject_chars: usize) -> String {
        self.headline_in(Markup::Plain, max_subject_chars)
    }

    fn headline_in(&self, markup: Markup, max_subject_chars: usize) -> String {
        let subject = markup.cut(&self.subject, max_subject_chars);
        match self.kind {
            PromptKind::Read => format!("Punie wants to read {subject}"),
            PromptKind::Write => match &self.change {
                Some(change) if change.before == Before::Missing => {
                    format!("Punie wants to create {subject}")
                }
                _ => format!("Punie wants to write {subject}"),
            },
            PromptKind::Execute => format!("Punie wants to run: {subject}"),
            PromptKind::Call => format!("Punie wants to call {subject}"),
        }
    }

    /// A title in Punie's own words that names nothing the request chose (`Punie wants to run
    /// a command`), for a client that shows a title beside the whole text and may render it
    /// in ways no quoting survives: Zed renders an ACP tool call's title as Markdown, as
    /// escaped Markdown or as text with every URL made a link, by the call's kind.
    pub fn title(&self) -> String {
        let what = match self.kind {
            PromptKind::Read => "read a file",
            PromptKind::Write => match &self.change {
                Some(change) if change.before == Before::Missing => "create a file",
                _ => "write a file",
            },
            PromptKind::Execute => "run a command",
            PromptKind::Call => return format!("Punie wants to call {}", self.tool),
        };
        format!("Punie wants to {what}")
    }

    /// True when [`Prompt::message`] at this size leaves something out, so that a front end
    /// offers the whole text ([`Prompt::details`]).
    pub fn is_cut(&self, max_subject_chars: usize) -> bool {
        show::cut(&self.subject, max_subject_chars).hidden_chars > 0
            || self.session.as_ref().is_some_and(|scope| {
                show::cut(&scope.describe(), max_subject_chars).hidden_chars > 0
            })
    }

    /// A dialog's text: the headline, the working directory, the diffstat, the notes, and what
    /// a session approval covers. The diff itself is in [`Prompt::details`].
    pub fn message(&self, max_subject_chars: usize) -> String {
        self.message_in(Markup::Plain, max_subject_chars)
    }

    /// [`Prompt::message`] for a client that may render it as Markdown (LSP's
    /// `window/showMessageRequest`: Zed does): what the request chose is code
    /// ([`show::markdown_literal`]), and each line ends with a hard line break, which a
    /// Markdown client shows as one and a plain client does not see.
    pub fn markdown_message(&self, max_subject_chars: usize) -> String {
        self.message_in(Markup::Markdown, max_subject_chars)
    }

    fn message_in(&self, markup: Markup, max_subject_chars: usize) -> String {
        let mut lines = vec![self.headline_in(markup, max_subject_chars)];
        if let Some(cwd) = &self.cwd {
            lines.push(format!("Working directory: {}", markup.quote(cwd)));
        }
        if let Some(change) = &self.change {
            lines.push(format!("Change: {}", change.diff.summary));
        }
        if let Some(spelled) = &self.spelled {
            lines.push(format!("The snippet wrote {}.", markup.quote(spelled)));
        }
        lines.extend(self.notes.iter().cloned());
        lines.push(match &self.session {
            Some(scope) => format!(
                "\"Allow for this session\" covers {}",
                markup.cut(&scope.describe(), max_subject_chars)
            ),
            None => "Only this call can be allowed; it is not remembered.".to_owned(),
        });
        lines.join(markup.line_break())
    }

    /// Everything, nothing cut: the message with the whole subject, then the whole diff.
    pub fn details(&self) -> String {
        self.details_in(Markup::Plain)
    }

    /// [`Prompt::details`] for a client that renders it as Markdown (ACP's tool call content:
    /// the spec says a client should, Zed does): [`Prompt::markdown_message`], then the diff as
    /// a fenced code block.
    pub fn markdown_details(&self) -> String {
        self.details_in(Markup::Markdown)
    }

    fn details_in(&self, markup: Markup) -> String {
        let mut res = self.message_in(markup, usize::MAX);
        if let Some(diff) = self
            .change
            .as_ref()
            .and_then(|change| change.diff.unified.as_ref())
        {
            res.push_str("\n\n");
            res.push_str(&markup.quote(diff));
        }
        res
    }
}

/// How a message writes what the request chose: as it is, or for a client that may render
/// Markdown.
#[derive(Clone, Copy)]
enum Markup {
    Plain,
    Markdown,
}

impl Markup {
    fn quote(self, text: &str) -> String {
        match self {
            Markup::Plain => text.to_owned(),
            Markup::Markdown => show::markdown_literal(text),
        }
    }

    /// `text` cut to `max_chars`, quoted, then the note on what was cut, in Punie's words.
    fn cut(self, text: &str, max_chars: usize) -> String {
        let shown = show::cut(text, max_chars);
        format!("{}{}", self.quote(&shown.text), shown.note())
    }

    fn line_break(self) -> &'static str {
        match self {
            Markup::Plain => "\n",
            Markup::Markdown => "  \n",
        }
    }
}

/// How the snippet spelled the path (`src/../.git/config`), when that differs from the
/// resolved path.
fn spelling(target: &Target) -> Option<String> {
    let spelled = target.spelled.trim_start_matches("./");
    (spelled != target.rel).then(|| shell_word(&target.spelled))
}

/// `ruff_check(path='src/')`: a typed tool's call with its arguments.
pub(crate) fn call_text(tool: &str, args: &[(String, String)]) -> String {
    let args: Vec<String> = args
        .iter()
        .map(|(name, value)| format!("{name}={}", shell_word(value)))
        .collect();
    format!("{tool}({})", args.join(", "))
}
