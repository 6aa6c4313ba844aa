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

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(default, deny_unknown_fields)]
    struct Limits {
        max_in_flight: usize,
    }

    /// What an operator's typo or stray sign does to a count: an error naming the section and
    /// the key, before anything starts.
    #[test]
    fn a_count_that_is_not_one_names_its_section_and_key() {
        let dir = std::env::temp_dir().join(format!("synap-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (line, says) in [
            ("max_in_flight = -1", "max_in_flight"),
            ("max_in_flight = \"lots\"", "max_in_flight"),
            ("max_in_flight = 1.5", "max_in_flight"),
            ("max_in_fligth = 10", "max_in_fligth"),
        ] {
            let file = dir.join("synap.toml");
            std::fs::write(&file, format!("[ingest]\n{line}\n")).unwrap();
            let refused = ConfigSource::load(Some(&file)).unwrap().section::<Limits>("ingest").unwrap_err();
            let text = refused.to_string();
            assert!(matches!(refused, ConfigError::Invalid { section: "ingest", .. }), "{text}");
            assert!(text.contains(says), "{line}: {text}");
        }
        std::fs::write(dir.join("synap.toml"), "[ingest]\nmax_in_flight = 3\n").unwrap();
        let read: Limits =
            ConfigSource::load(Some(&dir.join("synap.toml"))).unwrap().section("ingest").unwrap();
        assert_eq!(read.max_in_flight, 3);
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn a_limit_of_zero_is_refused_by_name() {
        assert_eq!(above_zero("ingest.max_in_flight", 1), Ok(()));
        let refused = ConfigError::from(above_zero("ingest.max_in_flight", 0).unwrap_err());
        assert_eq!(refused.to_string(), "invalid configuration: `ingest.max_in_flight` must be above 0");
    }
}
