//! Shared start-up plumbing for the Synap services.

pub mod chain;
pub mod config;
pub mod fault;
pub mod logging;
pub mod retry;
pub mod shutdown;

pub use config::{ConfigError, ConfigSource, Refusal, above_zero, load};
pub use fault::{Classify, Fault};
pub use logging::{LogConfig, LogFormat};
pub use shutdown::shutdown_token;

use std::path::PathBuf;

/// Command-line arguments every service accepts.
#[derive(Debug, clap::Parser)]
pub struct ServiceArgs {
    /// TOML configuration file; environment variables (`SYNAP_SECTION__KEY`) override it.
    #[arg(long, env = "SYNAP_CONFIG")]
    pub config: Option<PathBuf>,
}
