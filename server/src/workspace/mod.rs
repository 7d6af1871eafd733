//! workspace (placeholder until its issue lands).
