//! `shutdown`: cancels every run; the response goes out once their `end`s and answers have.

use lsp_server::RequestId;

use crate::lsp::global_state::{Handled, HandlerResult, Server};

pub(crate) fn handle_shutdown(server: &mut Server, id: RequestId) -> HandlerResult {
    server.begin_shutdown(id);
    Ok(Handled::Later)
}
