//! Loading the layers: the embedded defaults, a file, the environment.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use super::{DEFAULT_SETTINGS_YAML, ENV_PREFIX, ENV_SEPARATOR, Settings};
use crate::error::{Error, Result, SettingsError};

impl Settings {
    /// Loads the embedded defaults, then `file` if given, then the process
    /// environment's `WALGUARD__SECTION__KEY` overrides, and validates.
    ///
    /// # Errors
    ///
    /// [`Error::Settings`] when a file is missing or malformed, or a key is
    /// unknown or has the wrong type; [`Error::InvalidSetting`] when a value
    /// is out of range. Both name the key.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Settings::load`], with the environment given explicitly (tests
    /// use this instead of mutating the process environment). Variables
    /// without the `WALGUARD__` prefix are ignored.
    ///
    /// # Errors
    ///
    /// As [`Settings::load`].
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self> {
        let env: HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with(&format!("{ENV_PREFIX}{ENV_SEPARATOR}")))
            .collect();
        let env_names: Vec<String> = env.keys().cloned().collect();
        let from_env = |key: &str| env_variable_for(&env_names, key);

        let mut origin = String::from("defaults");
        let mut builder = config::Config::builder().add_source(config::File::from_str(
            DEFAULT_SETTINGS_YAML,
            config::FileFormat::Yaml,
        ));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(Error::Settings {
                    origin: path.display().to_string(),
                    source: SettingsError {
                        key: None,
                        message: "no such file".to_owned(),
                    },
                });
            }
            // Parse the file on its own first, so a syntax error is blamed on
            // the file and not on the merged result.
            config::Config::builder()
                .add_source(config::File::from(path).format(config::FileFormat::Yaml))
                .build()
                .map_err(|e| settings_error(path.display().to_string(), None, &e))?;
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Yaml));
            origin = format!("{origin}, {}", path.display());
        }
        if !env.is_empty() {
            origin.push_str(", environment");
        }
        builder = builder.add_source(
            config::Environment::with_prefix(ENV_PREFIX)
                .prefix_separator(ENV_SEPARATOR)
                .separator(ENV_SEPARATOR)
                .source(Some(env.into_iter().collect())),
        );
        let merged = builder
            .build()
            .map_err(|e| settings_error(origin.clone(), None, &e))?;
        let settings: Settings = serde_path_to_error::deserialize(merged).map_err(|e| {
            let key = e.path().to_string();
            // A bad value set by a variable is blamed on that variable.
            let origin = from_env(&key).map_or_else(
                || origin.clone(),
                |name| format!("environment variable {name}"),
            );
            settings_error(origin, Some(key), e.inner())
        })?;
        settings.validate().map_err(|e| match e {
            Error::InvalidSetting { key, value, reason } => {
                let reason = match from_env(&key) {
                    Some(name) => format!("{reason} (set by environment variable {name})"),
                    None => reason,
                };
                Error::InvalidSetting { key, value, reason }
            }
            other => other,
        })?;
        Ok(settings)
    }

    /// Parses settings from a YAML string on top of the defaults, without
    /// reading the environment.
    ///
    /// # Errors
    ///
    /// As [`Settings::load`].
    pub fn from_yaml(yaml: &str) -> Result<Self> {
        let merged = config::Config::builder()
            .add_source(config::File::from_str(
                DEFAULT_SETTINGS_YAML,
                config::FileFormat::Yaml,
            ))
            .add_source(config::File::from_str(yaml, config::FileFormat::Yaml))
            .build()
            .map_err(|e| settings_error("yaml".to_owned(), None, &e))?;
        let settings: Settings = serde_path_to_error::deserialize(merged).map_err(|e| {
            let key = e.path().to_string();
            settings_error("yaml".to_owned(), Some(key), e.inner())
        })?;
        settings.validate()?;
        Ok(settings)
    }
}

/// The `WALGUARD__SECTION__KEY` variable among `names` that sets the dotted
/// `key` (compared without case, as the `config` crate lowercases keys).
fn env_variable_for(names: &[String], key: &str) -> Option<String> {
    let key = key.trim_matches('.');
    if key.is_empty() {
        return None;
    }
    let wanted = format!(
        "{ENV_PREFIX}{ENV_SEPARATOR}{}",
        key.split('.').collect::<Vec<_>>().join(ENV_SEPARATOR)
    );
    names
        .iter()
        .find(|name| name.eq_ignore_ascii_case(&wanted))
        .cloned()
}

fn settings_error(origin: String, key: Option<String>, err: &dyn fmt::Display) -> Error {
    let key = key.filter(|k| !k.is_empty() && k != ".");
    let text = err.to_string();
    let message = match &key {
        // The `config` crate appends "for key `...` in FILE" to its own
        // messages; the key is already in front and the origin names the
        // file, so keep the message once.
        Some(k) => format!(
            "key {k}: {}",
            text.split(" for key `").next().unwrap_or(&text)
        ),
        None => text,
    };
    Error::Settings {
        origin,
        source: SettingsError { key, message },
    }
}
