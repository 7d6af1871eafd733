//! End-to-end tests of `punie lsp`.
