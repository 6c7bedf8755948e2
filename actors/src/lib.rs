//! walguard actors (in progress).
