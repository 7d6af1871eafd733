//! Figures for `punie bench --only lsp` (placeholder, filled in below).
