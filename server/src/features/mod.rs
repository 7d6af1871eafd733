//! The features: everything "Ask Punie" does that is not a protocol, shared by the LSP
//! server, the ACP agent and the terminal (the way rust-analyzer's `ide` crate owns features
//! and its LSP crate only converts).
//!
//! - [`Instruction`]: Explain, Fix, Write tests, Refactor, a free-form question.
//! - [`Ask`] and [`Selection`]: what a run is about, over a [`DocumentSnapshot`]; the question
//!   the model sees is built from it.
//! - [`execute`]: one run — question, agent, sandbox, then the edits its answer implies
//!   ([`answer_edit`]: the first complete code block replaces the selection; tests go to the
//!   file the language's convention names).
//! - [`FrontEnd`]: the one trait a protocol implements — the editor's buffers, permission
//!   dialogs, edits the user sees, and a sink for the run's events. The permission decision
//!   (`policy::permit`: protected paths, the tool policy, the session's remembered answers)
//!   is made here, for every front end alike; a front end only shows the `policy::Prompt` it
//!   is given and returns the answer.
//! - [`RunResources`]: what runs share (the pre-warmed sandbox, [`Conversations`],
//!   [`SessionApprovals`]); [`RunQueue`]: runs take turns on the one engine.
//! - [`Settings`]: the user's choices for runs, whatever protocol delivered them, over the
//!   user's own policy file ([`load_policy_file`]).
//! - [`ProseStream`]: a turn's prose as it streams, without its tool calls.
//!
//! **Architecture invariant:** nothing here knows JSON-RPC, `lsp_types` or ACP; a front end
//! converts its own wire types into these.

mod approvals;
mod conversations;
mod edits;
mod front_end;
mod instruction;
mod policy_file;
mod prose;
mod question;
mod queue;
mod run;
mod settings;
pub mod text;
mod tool_host;

pub use approvals::SessionApprovals;
pub use conversations::Conversations;
pub use edits::{
    AnswerEdit, CHANGED_MEANWHILE, EditOutcome, ExistingFile, FileChange, MAX_EDITED_FILE_BYTES,
    answer_edit, first_code_block, test_file_for, write_to_disk,
};
pub use front_end::{FrontEnd, OpenDocument};
pub use instruction::Instruction;
pub use policy_file::{load_policy_file, policy_file_path};
pub use prose::ProseStream;
pub use question::{Ask, DocumentSnapshot, Selection, language_from_path, shown_path};
pub use queue::RunQueue;
pub use run::{
    Finished, RunInput, RunResources, execute, prepare_continuation, prepare_new_conversation,
    profile_for,
};
pub use settings::Settings;
pub(crate) use tool_host::existing_file;
