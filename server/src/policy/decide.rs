//! The one permission decision: [`decide`] (pure) and [`permit`] (decide, ask through the
//! front end when needed, remember a session approval), and the [`Ruling`] every call ends
//! with, for the snippet's `PermissionError` and the transcript.
//!
//! The order of the rules, first match wins:
//!
//! | # | when | verdict |
//! |---|---|---|
//! | 1 | the tool's setting is `deny` | deny (setting) |
//! | 2 | a write's target is a protected path ([`PROTECTED`]) | deny (rule), or ask every time when the user turned the rule to `ask` |
//! | 2b | a read's target is named like a secret ([`Target::secret`](super::Target::secret): `.env`, a private key, `.aws/…`) | ask every time, never for the session: with no one to ask, deny |
//! | 3 | the tool's setting is `allow` | allow (setting) |
//! | 4 | a session approval covers the call | allow (that approval) |
//! | 5 | otherwise | ask, offering a session approval of [`Scope::of`] the call |
//!
//! A tool's setting defaults to its class's ([`default_for`]): read allow, write ask, execute ask.

use crate::sync;
use std::collections::BTreeSet;
use std::sync::Mutex;

use super::prompt::Prompt;
use super::protected::{PROTECTED, ProtectedRule, protected_rule};
use super::request::{Action, ToolRequest};
use super::scope::{Scope, SessionApprovals};
use super::show::{self, shell_word};
use super::{Decision, ToolPolicy, check};

/// The user's policy: a setting per tool, and the protected rules they turned into
/// ask-every-time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PolicySettings {
    pub tools: ToolPolicy,
    /// Ids of [`PROTECTED`] rules that ask instead of refusing.
    pub ask_protected: BTreeSet<String>,
}

impl PolicySettings {
    /// Turns the protected rule `id` into ask-every-time; false for an unknown id.
    pub fn ask_for_protected(&mut self, id: &str) -> bool {
        let known = PROTECTED.iter().any(|rule| rule.id == id);
        if known {
            self.ask_protected.insert(id.to_owned());
        }
        known
    }
}

/// Why a call was allowed or refused without asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go ahead: the tool's setting is `allow`, or `scope` approved it for the session.
    Allow {
        session: Option<Scope>,
    },
    /// Ask the user.
    Ask(Box<Prompt>),
    Deny(Refusal),
}

/// Why a call was refused without asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The tool's setting is `deny`.
    Setting,
    Protected(&'static ProtectedRule),
    /// The user denied calls like this one for the session.
    Session(Scope),
}

/// The user's answer to a prompt, as the front end got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    AllowOnce,
    /// Allowed, and remembered for the rest of the session with the prompt's scope.
    AllowForSession,
    Deny,
    /// Denied, and remembered for the rest of the session (ACP `reject_always`).
    DenyForSession,
    /// Dismissed, timed out, or the front end failed to ask.
    NoAnswer,
    /// This front end has no one to ask; the reason says what to do instead
    /// (`no terminal to ask on; pass --allow-writes`).
    Unavailable(String),
}

impl Answer {
    pub fn name(&self) -> &'static str {
        match self {
            Answer::AllowOnce => "allow_once",
            Answer::AllowForSession => "allow_session",
            Answer::Deny => "deny",
            Answer::DenyForSession => "deny_session",
            Answer::NoAnswer => "no_answer",
            Answer::Unavailable(_) => "unavailable",
        }
    }
}

/// Who decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuledBy {
    /// The tool's setting (`allow` or `deny`).
    Setting,
    /// A protected path's rule refused it (the rule is in [`Ruling::rule`]).
    Protected,
    /// An earlier answer "for this session" (its scope is in [`Ruling::scope`]).
    SessionApproval,
    User(Answer),
}

/// How one call was decided: what the snippet is told and what the transcript records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ruling {
    pub tool: &'static str,
    pub allowed: bool,
    pub by: RuledBy,
    /// The protected rule the target falls under: it refused the call, or made it ask.
    pub rule: Option<&'static ProtectedRule>,
    /// The session approval used, or granted by this answer.
    pub scope: Option<Scope>,
    /// What the call was about, escaped and cut: the path or the command line.
    pub subject: String,
}

/// How much of the subject a refusal message carries (it goes back to the model too).
const REFUSAL_SUBJECT_CHARS: usize = 200;

impl Ruling {
    /// `allow` or `deny`.
    pub fn decision(&self) -> &'static str {
        if self.allowed { "allow" } else { "deny" }
    }

    /// Who decided, one word: `setting`, `protected`, `session`, `user`.
    pub fn by_name(&self) -> &'static str {
        match &self.by {
            RuledBy::Setting => "setting",
            RuledBy::Protected => "protected",
            RuledBy::SessionApproval => "session",
            RuledBy::User(_) => "user",
        }
    }

    /// The `PermissionError` message of a refusal (`write_file: .git/config is protected
    /// (version control internals)`); `None` when the call was allowed.
    pub fn refusal_message(&self) -> Option<String> {
        if self.allowed {
            return None;
        }
        let tool = self.tool;
        let subject = &self.subject;
        Some(match &self.by {
            RuledBy::Protected => {
                let reason = self.rule.map_or("protected path", |rule| rule.reason);
                format!("{tool}: {subject} is protected ({reason})")
            }
            RuledBy::Setting => {
                format!("{tool}: denied by the tool policy (toolPolicy.{tool} = deny): {subject}")
            }
            RuledBy::User(Answer::Unavailable(why)) => {
                format!("{tool}: not allowed, {why}: {subject}")
            }
            RuledBy::User(Answer::NoAnswer) => {
                format!("{tool}: not allowed, the user did not answer: {subject}")
            }
            RuledBy::SessionApproval => {
                format!("{tool}: denied by the user for this session: {subject}")
            }
            RuledBy::User(_) => format!("{tool}: denied by the user: {subject}"),
        })
    }
}

/// The subject of `request` for rulings: the path, or the command line, escaped and cut.
fn subject(request: &ToolRequest) -> String {
    let text = match &request.action {
        Action::Read { target } | Action::Write { target, .. } => shell_word(&target.rel),
        Action::Execute { argv, .. } => show::shell_line(argv),
        Action::Call { args } => super::prompt::call_text(request.tool.name(), args),
    };
    show::cut(&text, REFUSAL_SUBJECT_CHARS).with_note()
}

/// What the policy says about `request`, before anyone is asked.
pub fn decide(
    request: &ToolRequest,
    settings: &PolicySettings,
    approvals: &SessionApprovals,
) -> Verdict {
    let setting = check(&settings.tools, request.tool);
    if setting == Decision::Deny {
        return Verdict::Deny(Refusal::Setting);
    }
    if let Action::Write { target, .. } = &request.action
        && let Some(rule) = protected_rule(target)
    {
        if !settings.ask_protected.contains(rule.id) {
            return Verdict::Deny(Refusal::Protected(rule));
        }
        let mut notes = vec![format!(
            "This path is protected ({}); your settings ask each time instead of refusing.",
            rule.reason
        )];
        if target.executable {
            notes
                .push("It will not stay executable: Punie never writes an execute bit.".to_owned());
        }
        return Verdict::Ask(Box::new(Prompt::new(request, None, notes)));
    }
    if let Action::Read { target } = &request.action
        && let Some(secret) = target.secret
    {
        // A file the user keeps out of the model's reach: no setting or session approval
        // reads it without the user seeing this one read.
        let note = format!(
            "Its name marks a secret ({secret}): Punie asks before every read of such a file."
        );
        return Verdict::Ask(Box::new(Prompt::new(request, None, vec![note])));
    }
    if setting == Decision::Allow {
        return Verdict::Allow { session: None };
    }
    match approvals.covering(request) {
        Some((scope, true)) => {
            return Verdict::Allow {
                session: Some(scope.clone()),
            };
        }
        Some((scope, false)) => return Verdict::Deny(Refusal::Session(scope.clone())),
        None => {}
    }
    Verdict::Ask(Box::new(Prompt::new(
        request,
        Some(Scope::of(request)),
        Vec::new(),
    )))
}

/// The [`Ruling`] of a verdict, with `answer` when the verdict was ask.
pub fn rule(request: &ToolRequest, verdict: &Verdict, answer: Option<Answer>) -> Ruling {
    let protected = match &request.action {
        Action::Write { target, .. } => protected_rule(target),
        _ => None,
    };
    let mut ruling = Ruling {
        tool: request.tool.name(),
        allowed: false,
        by: RuledBy::Setting,
        rule: protected,
        scope: None,
        subject: subject(request),
    };
    match verdict {
        Verdict::Allow { session: None } => ruling.allowed = true,
        Verdict::Allow {
            session: Some(scope),
        } => {
            ruling.allowed = true;
            ruling.by = RuledBy::SessionApproval;
            ruling.scope = Some(scope.clone());
        }
        Verdict::Deny(Refusal::Setting) => {}
        Verdict::Deny(Refusal::Protected(_)) => ruling.by = RuledBy::Protected,
        Verdict::Deny(Refusal::Session(scope)) => {
            ruling.by = RuledBy::SessionApproval;
            ruling.scope = Some(scope.clone());
        }
        Verdict::Ask(prompt) => {
            let answer = answer.unwrap_or(Answer::NoAnswer);
            ruling.allowed = matches!(answer, Answer::AllowOnce | Answer::AllowForSession);
            // A session answer is remembered only where the prompt offered one.
            if matches!(answer, Answer::AllowForSession | Answer::DenyForSession) {
                ruling.scope = prompt.session.clone();
            }
            ruling.by = RuledBy::User(answer);
        }
    }
    ruling
}

/// The whole permission step of a host: decide; when the verdict is ask, ask through `ask`
/// (the front end shows the prompt and returns the answer); remember a session approval.
/// The approvals are locked only to read and to grant, never while the user thinks.
pub fn permit(
    request: &ToolRequest,
    settings: &PolicySettings,
    approvals: &Mutex<SessionApprovals>,
    ask: &mut dyn FnMut(&Prompt) -> Answer,
) -> Ruling {
    let verdict = {
        let approvals = sync::lock(approvals);
        decide(request, settings, &approvals)
    };
    let answer = match &verdict {
        Verdict::Ask(prompt) => Some(ask(prompt)),
        Verdict::Allow { .. } | Verdict::Deny(_) => None,
    };
    let ruling = rule(request, &verdict, answer);
    if let (Some(scope), Verdict::Ask(_)) = (&ruling.scope, &verdict) {
        sync::lock(approvals).remember(scope.clone(), ruling.allowed);
    }
    ruling
}
