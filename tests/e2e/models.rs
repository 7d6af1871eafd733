//! End-to-end tests of `punie models`.
