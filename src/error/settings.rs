//! The detail of a settings failure, with the key it is about.

/// The detail of a settings failure: carries the dotted key when known.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SettingsError {
    pub(crate) key: Option<String>,
    pub(crate) message: String,
}

impl SettingsError {
    /// The dotted key the failure is about (e.g. `checkpoint.interval`), when
    /// known.
    #[must_use]
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }
}
