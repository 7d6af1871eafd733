//! [`FeatureToolHost`]: the sandbox's [`ToolHost`] for every front end. Reads see the
//! editor's buffers, writes become edits the user can see, and the tool policy decides what
//! is asked (`policy::permit`), with the front end's dialog and the session's remembered
//! answers.

use std::path::Path;

use crate::cancel::CancelFlag;
use crate::policy::{Action, Before, Prompt, Verdict};
use crate::sandbox::{Ruling, ToolError, ToolHost, ToolRequest};
use crate::tools::Tool;

use super::approvals::SessionApprovals;
use super::edits::{EditOutcome, ExistingFile, FileChange, write_to_disk};
use super::front_end::FrontEnd;
use super::settings::Settings;

/// Said in the question about an answer's edit to a file outside every workspace folder.
const OUTSIDE_NOTE: &str = "This file is outside every workspace folder, so Punie asks each time.";

pub(crate) struct FeatureToolHost<'a> {
    pub(crate) root: &'a Path,
    pub(crate) front_end: &'a dyn FrontEnd,
    pub(crate) settings: &'a Settings,
    pub(crate) approvals: &'a SessionApprovals,
    pub(crate) cancel: &'a CancelFlag,
}

impl FeatureToolHost<'_> {
    /// What is at `path`: the editor's buffer, else the file on disk; a request to the client
    /// gives up once `cancel` is set.
    pub(crate) fn existing(&self, path: &Path, cancel: &CancelFlag) -> ExistingFile {
        existing_file(self.front_end, self.root, path, cancel)
    }

    /// Whether the edit an answer implies may be made. The user asked for it, so an ordinary
    /// file in the workspace is not asked about again; a protected path is judged exactly as a
    /// `write_file` there would be (refused, or asked where the user's own settings say so),
    /// since the text is the model's all the same; a path in the workspace that leads out of
    /// it, or any path to a secret, is refused. A document outside every folder (opened on its
    /// own: the run's root is a scratch directory) is judged where it resolves, its whole path
    /// matched against the protected rules, and the user is asked every time, with no session
    /// answer: nothing the user opened vouches for the rest of that directory. `Err` says why
    /// not.
    pub(crate) fn permit_answer_edit(&self, change: &FileChange) -> Result<(), String> {
        let Some(path) = change.path() else {
            return match change {
                FileChange::Replace { id: Some(id), .. } if crate::uri::is_file_uri(id) => Err(
                    format!("{id} names a file Punie cannot reach as a local path"),
                ),
                // An untitled buffer: only the editor holds it.
                _ => Ok(()),
            };
        };
        let inside = path.starts_with(self.root);
        // Outside, the file system's root stands for the workspace: the path still resolves
        // through its links (the file an editor would write) and secrets are still refused.
        let base = if inside {
            self.root
        } else {
            path.ancestors().last().unwrap_or(path)
        };
        let resolved = crate::workspace::resolve_target(base, &path.to_string_lossy())
            .map_err(|err| format!("{}: {}", err.type_name, err.message))?;
        let mut target = resolved.target;
        if !inside {
            target.rel = resolved.path.to_string_lossy().into_owned();
        }
        let protected = crate::policy::protected_rule(&target).is_some();
        if inside && !protected {
            return Ok(());
        }
        let before = match change {
            FileChange::Replace { before, .. } => Before::Text(before.to_string()),
            FileChange::Create { .. } => Before::Missing,
        };
        let request = ToolRequest {
            tool: Tool::by_name("write_file").expect("write_file is a core tool"),
            action: Action::Write {
                target,
                before,
                after: change.after(),
            },
        };
        let ruling = if protected {
            self.permit(&request, self.cancel)
        } else {
            let prompt = Prompt::new(&request, None, vec![OUTSIDE_NOTE.to_owned()]);
            let answer = self.front_end.ask_permission(&prompt, self.cancel);
            crate::policy::rule(&request, &Verdict::Ask(Box::new(prompt)), Some(answer))
        };
        match ruling.refusal_message() {
            None => Ok(()),
            Some(message) => Err(message),
        }
    }

    /// Makes `change` through the editor (asking it to show the change for confirmation when
    /// `confirm`), or on disk when the front end cannot; the editor's answer is waited for
    /// until `cancel` is set.
    pub(crate) fn apply(
        &self,
        change: &FileChange,
        confirm: bool,
        cancel: &CancelFlag,
    ) -> EditOutcome {
        self.front_end
            .apply_change(change, confirm, cancel)
            .unwrap_or_else(|| write_to_disk(self.root, change))
    }
}

/// What is at `path`: the editor's buffer, else the file on disk (beneath `root`, the
/// workspace root as the client names it, following no link: `workspace::follow_root_links`).
/// A request to the client for the buffer gives up once `cancel` is set.
pub(crate) fn existing_file(
    front_end: &dyn FrontEnd,
    root: &Path,
    path: &Path,
    cancel: &CancelFlag,
) -> ExistingFile {
    if let Some(document) = front_end.open_document(path, cancel) {
        return ExistingFile::Text {
            id: Some(document.id),
            text: document.text,
            version: document.version,
        };
    }
    // Bounded and never blocking: a FIFO or a huge file is unreadable, not a hang.
    let shown = path.display().to_string();
    // Without its byte-order mark, as editors show it; a write to disk keeps the encoding.
    let on_disk = crate::workspace::follow_root_links(root, path);
    match super::text::read_file(&on_disk, &shown, crate::workspace::MAX_READ_BYTES) {
        Ok(text) => ExistingFile::Text {
            id: None,
            text: std::sync::Arc::new(text),
            version: None,
        },
        Err(err) if err.type_name == "FileNotFoundError" => ExistingFile::Missing,
        Err(err) => ExistingFile::Unreadable(err.message),
    }
}

/// Whether the text a write was judged on is the text there now. A file's byte-order mark is
/// not text (the disk is read without it, a write keeps it), so it does not count.
fn same_text(shown: &str, now: &str) -> bool {
    super::text::strip_bom(shown).1 == super::text::strip_bom(now).1
}

impl ToolHost for FeatureToolHost<'_> {
    fn workspace_root(&self) -> &Path {
        self.root
    }

    fn read_document(&self, path: &Path, cancel: &CancelFlag) -> Option<String> {
        self.front_end
            .open_document(path, cancel)
            .map(|document| document.text.to_string())
    }

    fn write_file(
        &self,
        path: &Path,
        before: &Before,
        content: &str,
        cancel: &CancelFlag,
    ) -> Result<(), ToolError> {
        // What was approved is the change from `before` (the text the question showed, or
        // what was read when the call was judged) to `content`: it is made only on that text.
        // The front end compares once more where it fixes the version it sends or opens the
        // file, so typing that lands while this runs is not overwritten either.
        let replace_whole = |id, text: std::sync::Arc<String>, version| FileChange::Replace {
            id,
            path: Some(path.to_owned()),
            range: 0..text.len(),
            before: text,
            version,
            text: content.to_owned(),
        };
        let change = match (before, self.existing(path, cancel)) {
            (Before::Missing, ExistingFile::Missing) => FileChange::Create {
                path: path.to_owned(),
                text: content.to_owned(),
            },
            (Before::Text(shown), ExistingFile::Text { id, text, version })
                if same_text(shown, &text) =>
            {
                replace_whole(id, text, version)
            }
            // No text was shown: the disk tells whether the file is still the one judged.
            (Before::Binary { .. } | Before::TooLarge { .. }, now)
                if crate::workspace::still_before(path, before) =>
            {
                match now {
                    // Not UTF-8 but text all the same: written keeping its encoding.
                    ExistingFile::Text { id, text, version } => replace_whole(id, text, version),
                    // `write_file` replaces whatever is there; an editor cannot show a binary
                    // file, so this one is written on disk.
                    ExistingFile::Unreadable(_) => {
                        return crate::workspace::write_unchanged(path, before, content);
                    }
                    ExistingFile::Missing => return Err(crate::workspace::changed_meanwhile()),
                }
            }
            _ => return Err(crate::workspace::changed_meanwhile()),
        };
        // A write the policy asks about is shown again where the editor can show the change
        // itself (a dialog's text can only summarise it).
        let write_file = Tool::by_name("write_file").expect("write_file is a core tool");
        let confirm = crate::policy::check(&self.settings.policy_settings().tools, write_file)
            != crate::policy::Decision::Allow;
        match self.apply(&change, confirm, cancel) {
            EditOutcome::Applied => Ok(()),
            EditOutcome::Rejected => Err(ToolError::permission("edit rejected by the editor")),
            EditOutcome::ChangedMeanwhile => Err(crate::workspace::changed_meanwhile()),
            EditOutcome::Failed(reason) => Err(ToolError::new("OSError", reason)),
            EditOutcome::Unanswered => Err(ToolError::new(
                "TimeoutError",
                "the editor has not answered the edit request; it may still make the change \
                 (for example once the user confirms its preview), so do not write this file \
                 again",
            )),
        }
    }

    fn command_limits(&self) -> crate::workspace::CommandLimits {
        self.settings.command_limits()
    }

    fn permit(&self, request: &ToolRequest, cancel: &CancelFlag) -> Ruling {
        crate::policy::permit(
            request,
            &self.settings.policy_settings(),
            self.approvals.shared(),
            // `cancel` joins the run's flag with the snippet's cap on waiting for the user.
            &mut |prompt| self.front_end.ask_permission(prompt, cancel),
        )
    }
}
