//! End-to-end tests of `punie sandbox`.
