//! Which Windows console event arrived: a plain value that both the
//! console listener (`console`) and the error enum (`error`) name, kept
//! apart from both so the arrows run one way (`console` → `error` →
//! here). Public as `console::ConsoleEvent`.

use std::fmt;

/// Which console event arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConsoleEvent {
    /// `CTRL_CLOSE_EVENT`: the console window was closed.
    Close,
    /// `CTRL_LOGOFF_EVENT`: the user is logging off.
    Logoff,
    /// `CTRL_SHUTDOWN_EVENT`: the system is shutting down.
    Shutdown,
}

impl ConsoleEvent {
    /// `console-close`, `logoff` or `system-shutdown`: the `stopped_by` of
    /// `walguard run`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Close => "console-close",
            Self::Logoff => "logoff",
            Self::Shutdown => "system-shutdown",
        }
    }
}

impl fmt::Display for ConsoleEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
