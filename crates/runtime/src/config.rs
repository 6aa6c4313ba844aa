//! Layered configuration: defaults compiled into the binary, then an optional TOML file, then
//! `SYNAP_*` environment variables (sections and keys joined by `__`, e.g.
//! `SYNAP_KAFKA__BOOTSTRAP_SERVERS`).
//!
//! One file configures a whole deployment: each service reads the sections it needs
//! (`[kafka]`, `[database]`, `[sender]`, …) and ignores the others, while a typo inside a
//! section it reads is an error that names the key.

use std::path::Path;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A configuration that could not be loaded; the message names the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} does not exist")]
    MissingFile { path: String },
    #[error("invalid configuration in [{section}]: {source}")]
    Invalid { section: &'static str, source: Box<figment::Error> },
    #[error("invalid configuration: `{key}` {reason}")]
    Rejected { key: &'static str, reason: String },
}

/// A setting a service cannot run with, as its `validate` names it: the key and why.
pub type Refusal = (&'static str, String);

impl From<Refusal> for ConfigError {
    fn from((key, reason): Refusal) -> Self {
        Self::Rejected { key, reason }
    }
}

/// Refuses 0 for a limit on the records a consumer may hold: one that may hold none never
/// reads, and its topics stall with nothing said.
pub fn above_zero(key: &'static str, value: usize) -> Result<(), Refusal> {
    if value == 0 {
        return Err((key, "must be above 0".into()));
    }
    Ok(())
}

/// The merged file and environment, before any section is read.
pub struct ConfigSource {
    figment: Figment,
}

impl ConfigSource {
    /// Reads the optional file, then the environment over it.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError::MissingFile { path: path.display().to_string() });
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(Env::prefixed("SYNAP_").split("__"));
        Ok(Self { figment })
    }

    /// Reads one section over its compiled-in defaults.
    pub fn section<T>(&self, name: &'static str) -> Result<T, ConfigError>
    where
        T: Serialize + DeserializeOwned + Default,
    {
        Figment::from(Serialized::defaults(T::default()))
            .merge(self.figment.focus(name))
            .extract()
            .map_err(|e| ConfigError::Invalid { section: name, source: Box::new(e) })
    }
}

/// Shorthand: load the source and read one section.
pub fn load<T>(file: Option<&Path>, section: &'static str) -> Result<T, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
{
    ConfigSource::load(file)?.section(section)
}
