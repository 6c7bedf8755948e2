//! Process tests of `walguard bench` (placeholder).
