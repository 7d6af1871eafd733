//! Code Mode vs tool-per-turn (placeholder, filled below).
