//! Process tests of the built `walguard` binary.
