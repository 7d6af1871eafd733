//! End-to-end tests of `punie engine`.
