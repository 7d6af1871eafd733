//! toolcall (placeholder until its issue lands).
