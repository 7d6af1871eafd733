//! The language server behind navigation: one `ty server` per workspace, started on the first
//! navigation call there and kept, in the jail, for the calls after it.
//!
//! **Kept, not started per call** (measured, docs/typed-tools.md): ty answers a request in
//! about a millisecond once it has read the workspace, while a server started for one call
//! pays its start-up and its indexing each time. A one-shot session (every message written up
//! front, then end of input) was also tried: ty drops a request still in progress when its
//! input ends or `shutdown` arrives, so `find_references` and `workspace_symbols` came back
//! empty or not at all, depending on timing.
//!
//! **Bounded**: at most [`MAX_SERVERS`] workspaces have a server; the least recently used
//! one is stopped for a new one, and one idle for [`IDLE`] is stopped at the next call. A
//! server that does not answer before the host's command timeout, or whose run is cancelled,
//! is stopped (and started again by a later call). When Punie exits, the servers' jails end
//! with it (the helper sees its control socket close).
//!
//! **Permission**: navigation stays in the read class. The program is fixed (`ty server`,
//! found on `PATH` like every typed tool's), the model chooses only a position or a query,
//! ty reads the workspace without running its code, and it runs in the jail as a reader
//! ([`jail::Reach::Reader`]): whatever it reads can reach the model in a hover or a preview
//! without a question, so it reads only what `read_file` reads without asking (the workspace
//! without the files named like a secret, nor where links to them lead) and what it needs to
//! run (the installations on `PATH`, its Python environment among them; the system's
//! libraries); no network; writes only in the workspace and its private directory. Its jail's
//! rules are fixed when it starts, so every call takes the workspace's snapshot again
//! ([`jail::workspace_secrets`]) and starts the server again when it no longer matches (a
//! secret made since, an entry beside one that its jail grants entry by entry); a workspace
//! too large to take one of gets the parser.

use crate::sync;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lsp_types::request::{
    DocumentSymbolRequest, GotoDefinition, HoverRequest, References, WorkspaceSymbolRequest,
};
use lsp_types::{
    DocumentSymbolParams, GotoDefinitionParams, HoverParams, ReferenceContext, ReferenceParams,
    TextDocumentIdentifier, TextDocumentPositionParams, WorkspaceSymbolParams,
};

use super::client::{Client, ClientError};
use super::convert::{self, Files};
use super::{
    DocumentSymbolsResult, FindReferencesResult, GotoDefinitionResult, HoverResult,
    WorkspaceSymbolsResult,
};
use crate::jail;
use crate::tools::Program;
use crate::typed::source::SourceFile;
use crate::typed::{Context, Position};
use crate::workspace::ToolError;

/// Who answered, as results report it.
pub(super) const ANSWERED_BY: &str = "ty server";
/// Workspaces with a running server at most.
const MAX_SERVERS: usize = 4;
/// A server unused for this long is stopped at the next call.
const IDLE: Duration = Duration::from_secs(600);
/// After a server failed to start in a workspace, calls there use the parser this long.
const RETRY_AFTER: Duration = Duration::from_secs(60);

/// The server of one workspace.
struct Slot {
    root: PathBuf,
    used: Instant,
    state: Arc<Mutex<State>>,
}

enum State {
    NotStarted,
    Running(Box<Client>),
    /// It failed to start; calls use the parser until then.
    Failed {
        retry_at: Instant,
    },
}

static SERVERS: Mutex<Vec<Slot>> = Mutex::new(Vec::new());

/// The state of `root`'s server, made when missing; stops idle and surplus servers.
fn slot(root: &Path) -> Arc<Mutex<State>> {
    let mut servers = sync::lock(&SERVERS);
    let now = Instant::now();
    servers.retain(|slot| now.duration_since(slot.used) < IDLE);
    if let Some(slot) = servers.iter_mut().find(|slot| slot.root == root) {
        slot.used = now;
        return slot.state.clone();
    }
    if servers.len() >= MAX_SERVERS
        && let Some(oldest) = servers
            .iter()
            .enumerate()
            .min_by_key(|(_, slot)| slot.used)
            .map(|(idx, _)| idx)
    {
        servers.remove(oldest);
    }
    let state = Arc::new(Mutex::new(State::NotStarted));
    servers.push(Slot {
        root: root.to_path_buf(),
        used: now,
        state: state.clone(),
    });
    state
}

pub(super) fn stop_all() {
    let stopped: Vec<Slot> = std::mem::take(&mut *sync::lock(&SERVERS));
    drop(stopped);
}

/// Runs `ask` on the workspace's server, starting it if needed. `Ok(None)`: no server can
/// answer (ty is not installed, did not start, broke or refused), so the parser answers.
fn with_client<T>(
    ctx: &Context<'_>,
    ask: impl FnOnce(&mut Client, Instant) -> Result<T, ClientError>,
) -> Result<Option<T>, ToolError> {
    if !crate::typed::installed(Program::Ty) {
        return Ok(None);
    }
    let deadline = Instant::now() + ctx.host.command_limits().timeout;
    let state = slot(ctx.root());
    let mut state = sync::lock(&state);
    let Some(secrets) = jail::workspace_secrets(ctx.root()) else {
        tracing::warn!(
            "navigation: the workspace has more than {} directories, too many to find every \
             secret the language server must not read; the parser answers",
            jail::DIRS_BEFORE_COMMAND
        );
        *state = State::NotStarted;
        return Ok(None);
    };
    let client = match &mut *state {
        State::Running(client) if client.is_running() && client.hides(&secrets) => client,
        State::Failed { retry_at } if Instant::now() < *retry_at => return Ok(None),
        _ => {
            // A server whose jail no longer hides what it must is stopped first.
            *state = State::NotStarted;
            let argv = ["ty".to_owned(), "server".to_owned()];
            match Client::start(&argv, ctx.root(), secrets, deadline, ctx.cancel) {
                Ok(client) => {
                    *state = State::Running(Box::new(client));
                    let State::Running(client) = &mut *state else {
                        unreachable!("just set")
                    };
                    client
                }
                Err(ClientError::Cancelled) => {
                    *state = State::NotStarted;
                    return Err(super::interrupted(
                        ctx.cancel,
                        "the language server did not answer",
                    ));
                }
                Err(err) => {
                    tracing::warn!(
                        "navigation: ty server did not start, the parser answers: {err:?}"
                    );
                    *state = State::Failed {
                        retry_at: Instant::now() + RETRY_AFTER,
                    };
                    return Ok(None);
                }
            }
        }
    };
    client.sync_files();
    match ask(client, deadline) {
        Ok(answer) => Ok(Some(answer)),
        Err(ClientError::Refused(why)) => {
            tracing::debug!("navigation: ty server refused, the parser answers: {why}");
            Ok(None)
        }
        Err(ClientError::Cancelled) => {
            *state = State::NotStarted;
            Err(super::interrupted(
                ctx.cancel,
                "the language server did not answer",
            ))
        }
        Err(ClientError::Broken(why)) => {
            tracing::warn!("navigation: ty server stopped, the parser answers: {why}");
            *state = State::NotStarted;
            Ok(None)
        }
    }
}

/// Workspace files for conversions, read as [`super::workspace_text`] reads them.
struct HostFiles<'a, 'b>(&'a Context<'b>);

impl Files for HostFiles<'_, '_> {
    fn text(&self, path: &Path) -> Option<String> {
        super::workspace_text(self.0, path)
    }

    fn shown(&self, path: &Path) -> String {
        self.0.shown(path)
    }
}

/// The request position for `pos` in `text`: where the name the model means is spelled
/// (the parser's [`super::parser::aim`]), else the position as given.
fn position_params(
    uri: lsp_types::Uri,
    text: &str,
    pos: &Position<'_>,
) -> TextDocumentPositionParams {
    let aimed = SourceFile::parse(text.to_owned()).ok().and_then(|file| {
        let (range, _) = super::parser::aim(&file, pos)?;
        Some(file.line_col(range.start()))
    });
    let (line, column) = aimed.unwrap_or((
        usize::try_from(pos.line).unwrap_or(0),
        usize::try_from(pos.column.saturating_sub(1)).unwrap_or(0),
    ));
    TextDocumentPositionParams {
        text_document: TextDocumentIdentifier::new(uri),
        position: convert::lsp_position(text, line, column),
    }
}

/// Opens the file of `pos`, asks `ask` with its position, and closes it again.
fn at_position<T>(
    ctx: &Context<'_>,
    pos: &Position<'_>,
    ask: impl FnOnce(&mut Client, TextDocumentPositionParams, Instant) -> Result<T, ClientError>,
) -> Result<Option<T>, ToolError> {
    let (path, text) = ctx.read(pos.file_path)?;
    with_client(ctx, |client, deadline| {
        let uri = client.open(&path, &text)?;
        let res = ask(client, position_params(uri.clone(), &text, pos), deadline);
        client.close(uri);
        res
    })
}

pub(super) fn goto_definition(
    ctx: &Context<'_>,
    pos: &Position<'_>,
) -> Result<Option<GotoDefinitionResult>, ToolError> {
    at_position(ctx, pos, |client, at, deadline| {
        let params = GotoDefinitionParams {
            text_document_position_params: at,
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
        };
        let res = client.request::<GotoDefinition>(params, deadline, ctx.cancel)?;
        Ok(convert::definitions(&HostFiles(ctx), pos.symbol, res))
    })
}

pub(super) fn find_references(
    ctx: &Context<'_>,
    pos: &Position<'_>,
) -> Result<Option<FindReferencesResult>, ToolError> {
    at_position(ctx, pos, |client, at, deadline| {
        let params = ReferenceParams {
            text_document_position: at,
            context: ReferenceContext {
                include_declaration: true,
            },
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
        };
        let res = client.request::<References>(params, deadline, ctx.cancel)?;
        Ok(convert::references(&HostFiles(ctx), pos.symbol, res))
    })
}

pub(super) fn hover(
    ctx: &Context<'_>,
    pos: &Position<'_>,
) -> Result<Option<HoverResult>, ToolError> {
    at_position(ctx, pos, |client, at, deadline| {
        let params = HoverParams {
            text_document_position_params: at,
            work_done_progress_params: Default::default(),
        };
        let res = client.request::<HoverRequest>(params, deadline, ctx.cancel)?;
        Ok(convert::hover(pos.symbol, res))
    })
}

pub(super) fn document_symbols(
    ctx: &Context<'_>,
    raw: &str,
) -> Result<Option<DocumentSymbolsResult>, ToolError> {
    let (path, text) = ctx.read(raw)?;
    with_client(ctx, |client, deadline| {
        let uri = client.open(&path, &text)?;
        let params = DocumentSymbolParams {
            text_document: TextDocumentIdentifier::new(uri.clone()),
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
        };
        let res = client.request::<DocumentSymbolRequest>(params, deadline, ctx.cancel);
        client.close(uri);
        Ok(convert::document_symbols(raw, res?))
    })
}

pub(super) fn workspace_symbols(
    ctx: &Context<'_>,
    query: &str,
) -> Result<Option<WorkspaceSymbolsResult>, ToolError> {
    with_client(ctx, |client, deadline| {
        let params = WorkspaceSymbolParams {
            query: query.to_owned(),
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
        };
        let res = client.request::<WorkspaceSymbolRequest>(params, deadline, ctx.cancel)?;
        Ok(convert::workspace_symbols(&HostFiles(ctx), query, res))
    })
}
