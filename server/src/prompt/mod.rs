//! prompt (placeholder until its issue lands).
