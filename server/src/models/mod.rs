//! models (placeholder until its issue lands).
