//! lsp (placeholder until its issue lands).
