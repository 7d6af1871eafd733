//! Punie's extensions to LSP: every `punie/*` method and `punie.*` command, declared once.
//!
//! Mirrored by hand in `editors/vscode/src/lsp_ext.ts`; the contract is INTERFACES.md §2.
//!
//! | name | kind | params | result |
//! |---|---|---|---|
//! | `punie.ask` | command | `{"uri", "range", "instruction", "question"?}` | `{"runId", "token"?}` |
//! | `punie.cancel` | command | `{"runId"}` | `{"cancelled": bool}` |
//! | `punie.newConversation` | command | none | `{"cleared": N}` (conversations forgotten) |
//! | `punie/answer` | notification (server → client) | [`AnswerParams`] | |
//! | `experimental.punieAnswer` | client capability | `true` | |
//! | `experimental.punieUserSettings` | client capability | `true`: its settings are the user's alone | |
//! | `punie/permission` | request (server → client) | [`PermissionParams`] | `{"answer": "allow"\|"allowSession"\|"deny"}` |
//! | `experimental.puniePermission` | client capability | `true`: permission questions come as `punie/permission` | |

use lsp_types::Range;
use serde::{Deserialize, Serialize};

pub const ASK_COMMAND: &str = "punie.ask";
pub const CANCEL_COMMAND: &str = "punie.cancel";
/// Every command `executeCommandProvider` lists (Zed hides actions whose command is not listed).
/// Forget the conversations that free-form questions continue, so the next one starts afresh.
pub const NEW_CONVERSATION_COMMAND: &str = "punie.newConversation";

pub const COMMANDS: &[&str] = &[ASK_COMMAND, CANCEL_COMMAND, NEW_CONVERSATION_COMMAND];

pub const ANSWER_NOTIFICATION: &str = "punie/answer";
pub const ANSWER_CAPABILITY: &str = "punieAnswer";
/// The client vouches that the settings it sends are the user's alone (VS Code: `application`
/// and `machine` scope), so a `toolPolicy` that loosens the policy, and limits or command access
/// beyond the defaults, are honoured. Without it a project's settings could send the same keys,
/// and only what tightens, lowers or narrows counts.
pub const USER_SETTINGS_CAPABILITY: &str = "punieUserSettings";
pub const CONFIG_SECTION: &str = "punie";

/// A permission question with everything a rich client can show: the diff's two texts (for a
/// diff editor before Allow/Deny), the whole text when the message is cut. Sent instead of
/// `window/showMessageRequest` to clients that declare [`PERMISSION_CAPABILITY`].
pub const PERMISSION_REQUEST: &str = "punie/permission";
pub const PERMISSION_CAPABILITY: &str = "puniePermission";

/// Params of `punie/permission`. Every text is the policy's: escaped, and saying what it cuts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionParams {
    pub run_id: String,
    pub tool: String,
    /// `read`, `write`, `execute` or `call`.
    pub kind: String,
    /// One line: `Punie wants to write src/app.py`.
    pub title: String,
    /// The dialog's text (the title first), short.
    pub message: String,
    /// Everything: the whole command, the whole diff.
    pub details: String,
    /// `message` leaves out part of `details` beyond the diff (a long command).
    pub cut: bool,
    /// What "Allow for this session" covers; `null`: do not offer it.
    pub session: Option<String>,
    pub change: Option<PermissionChange>,
}

/// A write's change, for a diff editor.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PermissionChange {
    pub uri: String,
    /// The current text; `null` for a new file (or one that is not text).
    pub before: Option<String>,
    pub after: String,
    /// `1 line added, 1 removed`.
    pub summary: String,
}

/// The `answer` of a `punie/permission` result.
pub const PERMISSION_ANSWER_ALLOW: &str = "allow";
pub const PERMISSION_ANSWER_ALLOW_SESSION: &str = "allowSession";
pub const PERMISSION_ANSWER_DENY: &str = "deny";

pub const PERMISSION_ALLOW: &str = "Allow";
pub const PERMISSION_ALLOW_SESSION: &str = "Allow for this session";
pub const PERMISSION_DENY: &str = "Deny";

pub const PROGRESS_TITLE: &str = "Punie";
pub const CODE_ACTION_PREFIX: &str = "Ask Punie";

/// `punie.cancel`'s argument.
#[derive(Debug, Deserialize)]
pub struct CancelParams {
    #[serde(rename = "runId")]
    pub run_id: String,
}

/// `punie/answer`'s params.
#[derive(Debug, Clone, Serialize)]
pub struct AnswerParams {
    #[serde(rename = "runId")]
    pub run_id: String,
    pub uri: String,
    pub range: Range,
    pub markdown: String,
    /// `RunStatus::name`: `done`, `cancelled`, `failed`.
    pub status: &'static str,
}
