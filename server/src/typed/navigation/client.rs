//! Punie as the client of a Python language server (`ty server`) running in the jail
//! ([`crate::jail::Session`]): JSON-RPC frames as our own server reads and writes them
//! (`crate::jsonrpc`), requests bounded by the caller's deadline and cancel flag, answers to
//! the server's own requests, and the notifications that keep its view of the workspace
//! current (it does not watch the disk itself: the client tells it which files changed).

use std::collections::HashMap;
use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use lsp_server::{Message, Notification, Request, RequestId, Response};
use lsp_types::notification::{
    DidChangeWatchedFiles, DidCloseTextDocument, DidOpenTextDocument, Initialized,
};
use lsp_types::request::Initialize;
use lsp_types::{
    ClientCapabilities, DidChangeWatchedFilesParams, DidCloseTextDocumentParams,
    DidOpenTextDocumentParams, DocumentSymbolClientCapabilities, FileChangeType, FileEvent,
    InitializeParams, TextDocumentClientCapabilities, TextDocumentIdentifier, TextDocumentItem,
    Uri, WorkspaceFolder,
};

use crate::cancel::CancelFlag;
use crate::jail::{Session, SessionEnd, WorkspaceSecrets};
use crate::jsonrpc::{self as transport, Incoming, Outgoing};

/// The most a server may write before the client reads it (a response, notifications).
const OUTPUT_LIMIT: usize = 32 * 1024 * 1024;
/// How often a request is sent again when the server answers that the workspace changed
/// under it (it is still reading the workspace).
const RETRIES: usize = 5;
/// JSON-RPC error codes that mean "ask again".
const CONTENT_MODIFIED: i32 = -32801;
const SERVER_CANCELLED: i32 = -32802;
const METHOD_NOT_FOUND: i32 = -32601;
/// Files besides Python sources whose change the server is told about.
const CONFIG_FILES: &[&str] = &["pyproject.toml", "ty.toml", "setup.cfg", "setup.py"];

/// Why a request got no answer.
#[derive(Debug)]
pub(super) enum ClientError {
    /// The session ended or the server broke the protocol: the client cannot be used again.
    Broken(String),
    /// The run was cancelled; the server was stopped.
    Cancelled,
    /// The server answered with an error; it can still be used.
    Refused(String),
}

impl From<SessionEnd> for ClientError {
    fn from(end: SessionEnd) -> ClientError {
        match end {
            SessionEnd::Cancelled => ClientError::Cancelled,
            end => ClientError::Broken(format!("the language server stopped: {end}")),
        }
    }
}

/// One initialized language server for one workspace.
pub(super) struct Client {
    session: Session,
    root: PathBuf,
    /// What its jail hides: the workspace as it was when the server started.
    secrets: WorkspaceSecrets,
    next_id: i32,
    /// The workspace's Python and configuration files as the server last saw them.
    seen: HashMap<PathBuf, Stamp>,
}

/// A file's modification time and length.
type Stamp = (Option<SystemTime>, u64);

impl Client {
    /// Starts `argv` (the server) in `root`, its jail hiding `secrets`, and initializes it.
    pub(super) fn start(
        argv: &[String],
        root: &Path,
        secrets: WorkspaceSecrets,
        deadline: Instant,
        cancel: &CancelFlag,
    ) -> Result<Client, ClientError> {
        let session = Session::start(argv, root, root, &secrets, OUTPUT_LIMIT, deadline, cancel)
            .map_err(|failure| ClientError::Broken(failure.to_string()))?;
        let mut client = Client {
            session,
            root: root.to_path_buf(),
            secrets,
            next_id: 0,
            seen: stamps(root),
        };
        let uri = uri_of(root)?;
        #[allow(deprecated)] // `root_uri`: older servers read only it.
        let params = InitializeParams {
            process_id: Some(std::process::id()),
            root_uri: Some(uri.clone()),
            workspace_folders: Some(vec![WorkspaceFolder {
                uri,
                name: "workspace".to_owned(),
            }]),
            // Nested document symbols: the stub promises each symbol's `children`.
            capabilities: ClientCapabilities {
                text_document: Some(TextDocumentClientCapabilities {
                    document_symbol: Some(DocumentSymbolClientCapabilities {
                        hierarchical_document_symbol_support: Some(true),
                        ..DocumentSymbolClientCapabilities::default()
                    }),
                    ..TextDocumentClientCapabilities::default()
                }),
                ..ClientCapabilities::default()
            },
            ..InitializeParams::default()
        };
        client.request::<Initialize>(params, deadline, cancel)?;
        client.notify::<Initialized>(lsp_types::InitializedParams {});
        Ok(client)
    }

    pub(super) fn is_running(&self) -> bool {
        self.session.is_running()
    }

    /// Whether its jail still hides what `now` (the workspace's snapshot) says must be.
    pub(super) fn hides(&self, now: &WorkspaceSecrets) -> bool {
        self.secrets == *now
    }

    /// Tells the server which workspace files changed, appeared or went since it last looked.
    pub(super) fn sync_files(&mut self) {
        let now = stamps(&self.root);
        let mut changes = Vec::new();
        for (path, stamp) in &now {
            let kind = match self.seen.get(path) {
                None => FileChangeType::CREATED,
                Some(seen) if seen != stamp => FileChangeType::CHANGED,
                Some(_) => continue,
            };
            changes.extend(uri_of(path).ok().map(|uri| FileEvent::new(uri, kind)));
        }
        for path in self.seen.keys().filter(|path| !now.contains_key(*path)) {
            changes.extend(
                uri_of(path)
                    .ok()
                    .map(|uri| FileEvent::new(uri, FileChangeType::DELETED)),
            );
        }
        self.seen = now;
        if !changes.is_empty() {
            self.notify::<DidChangeWatchedFiles>(DidChangeWatchedFilesParams { changes });
        }
    }

    /// Opens `path` with `text` (an editor's buffer or the disk), for one request.
    pub(super) fn open(&mut self, path: &Path, text: &str) -> Result<Uri, ClientError> {
        let uri = uri_of(path)?;
        self.notify::<DidOpenTextDocument>(DidOpenTextDocumentParams {
            text_document: TextDocumentItem::new(
                uri.clone(),
                "python".to_owned(),
                1,
                text.to_owned(),
            ),
        });
        Ok(uri)
    }

    /// Closes a file [`Client::open`] opened: the server reads it from the disk again.
    pub(super) fn close(&mut self, uri: Uri) {
        self.notify::<DidCloseTextDocument>(DidCloseTextDocumentParams {
            text_document: TextDocumentIdentifier::new(uri),
        });
    }

    pub(super) fn notify<N: lsp_types::notification::Notification>(&mut self, params: N::Params) {
        self.send(Message::Notification(Notification::new(
            N::METHOD.to_owned(),
            params,
        )));
    }

    /// Sends `R` and waits for its answer until `deadline`, answering what the server asks
    /// meanwhile and asking again while it says the workspace changed under it.
    pub(super) fn request<R: lsp_types::request::Request>(
        &mut self,
        params: R::Params,
        deadline: Instant,
        cancel: &CancelFlag,
    ) -> Result<R::Result, ClientError> {
        let params = serde_json::to_value(params)
            .map_err(|err| ClientError::Broken(format!("cannot encode {}: {err}", R::METHOD)))?;
        let mut tries = 0;
        loop {
            self.next_id += 1;
            let id = RequestId::from(self.next_id);
            self.send(Message::Request(Request::new(
                id.clone(),
                R::METHOD.to_owned(),
                params.clone(),
            )));
            let response = self.response(&id, deadline, cancel)?;
            match response.error {
                Some(error)
                    if matches!(error.code, CONTENT_MODIFIED | SERVER_CANCELLED)
                        && tries < RETRIES =>
                {
                    tries += 1;
                }
                Some(error) => {
                    return Err(ClientError::Refused(format!(
                        "{} failed: {} ({})",
                        R::METHOD,
                        error.message,
                        error.code
                    )));
                }
                None => {
                    let result = response.result.unwrap_or(serde_json::Value::Null);
                    return serde_json::from_value(result).map_err(|err| {
                        ClientError::Broken(format!(
                            "the language server's answer to {} is not what LSP defines: {err}",
                            R::METHOD
                        ))
                    });
                }
            }
        }
    }

    /// Reads until the response to `id`.
    fn response(
        &mut self,
        id: &RequestId,
        deadline: Instant,
        cancel: &CancelFlag,
    ) -> Result<Response, ClientError> {
        loop {
            let mut reader = SessionReader {
                session: &mut self.session,
                deadline,
                cancel,
                end: None,
            };
            let frame = transport::read_frame(&mut reader);
            let end = reader.end.take();
            let message = match (frame, end) {
                (Ok(Some(Incoming::Message(message))), _) => message,
                (_, Some(end)) => return Err(end.into()),
                (Ok(None), None) => {
                    return Err(ClientError::Broken(format!(
                        "the language server closed its output{}",
                        self.session.stderr_note()
                    )));
                }
                (Ok(Some(Incoming::Invalid { message, .. })), None) => {
                    return Err(ClientError::Broken(format!(
                        "the language server wrote something that is not JSON-RPC: {message}"
                    )));
                }
                (Err(err), None) => return Err(ClientError::Broken(err.to_string())),
            };
            match message {
                Message::Response(response) if &response.id == id => return Ok(response),
                // An answer to a request given up on, or a diagnostic: not needed.
                Message::Response(_) | Message::Notification(_) => {}
                Message::Request(request) => self.answer(request),
            }
        }
    }

    /// Answers a request from the server: progress and registrations are acknowledged, the
    /// rest is not something this client offers.
    fn answer(&mut self, request: Request) {
        let response = match request.method.as_str() {
            "window/workDoneProgress/create" | "client/registerCapability" => {
                Response::new_ok(request.id, serde_json::Value::Null)
            }
            method => Response::new_err(
                request.id,
                METHOD_NOT_FOUND,
                format!("{method} is not supported by this client"),
            ),
        };
        self.send(Message::Response(response));
    }

    fn send(&mut self, message: Message) {
        let mut frame = Vec::new();
        // Writing to a `Vec` does not fail.
        let _ = transport::write_frame(&mut frame, &Outgoing::Message(message));
        self.session.send(&frame);
    }
}

fn uri_of(path: &Path) -> Result<Uri, ClientError> {
    crate::uri::from_path(path)
        .and_then(|uri| uri.parse().ok())
        .ok_or_else(|| ClientError::Refused(format!("{} has no file URI", path.display())))
}

/// The workspace's Python files (as the parser walks them) and configuration files, stamped.
fn stamps(root: &Path) -> HashMap<PathBuf, Stamp> {
    super::parser::python_files(root)
        .into_iter()
        .chain(CONFIG_FILES.iter().map(|name| root.join(name)))
        .filter_map(|path| {
            let meta = std::fs::metadata(&path).ok()?;
            Some((path, (meta.modified().ok(), meta.len())))
        })
        .collect()
}

/// The session's stdout as a [`BufRead`] for the frame reader: a read waits for the server
/// at most until the deadline; then (or on cancel) it fails and says why in `end`.
struct SessionReader<'a> {
    session: &'a mut Session,
    deadline: Instant,
    cancel: &'a CancelFlag,
    end: Option<SessionEnd>,
}

impl Read for SessionReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n_read = available.len().min(buf.len());
        buf[..n_read].copy_from_slice(&available[..n_read]);
        self.consume(n_read);
        Ok(n_read)
    }
}

impl BufRead for SessionReader<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while self.session.output().is_empty() {
            if let Err(end) = self.session.wait_output(self.deadline, self.cancel) {
                let err = io::Error::other(end.to_string());
                self.end = Some(end);
                return Err(err);
            }
        }
        Ok(self.session.output().as_slice())
    }

    fn consume(&mut self, amount: usize) {
        let output = self.session.output();
        output.drain(..amount.min(output.len()));
    }
}
