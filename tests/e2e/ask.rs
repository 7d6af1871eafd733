//! End-to-end tests of `punie ask`.
