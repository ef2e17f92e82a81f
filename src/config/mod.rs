//! The configuration file (TOML), read once at start (and at each reload) and validated
//! completely.
//!
//! Two steps, as ripgrep splits raw flags from resolved settings: [`raw`] parses the file into
//! its TOML shapes (types and unknown keys checked, positions kept), then [`resolve`] gives the
//! values their meaning with what it needs from outside the file, handed in as an
//! [`Environment`] (variables, secret files, systemd's directories, the clock), and builds each
//! module's own settings: the endpoints for the S3 client, the Ceph source for the capacity job,
//! the listener's address, one [`JobConfig`] per job instance. Every error names the file, the
//! line and the key: a daemon that starts is a daemon whose config can work.
//! `config.example.toml` at the repository root documents every key.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;

use crate::format::{Compression, Format};
use crate::jobs::{pool_df, rgw_usage};
use crate::keys::KeyTemplate;
use crate::listener::HttpConfig;
use crate::s3::Endpoint;
use crate::schedule::Schedule;
use crate::snapshot::Labels;

mod env;
mod raw;
mod resolve;
#[cfg(test)]
mod tests;

pub use env::{Environment, Process};

/// A config error, with where it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML, or not of the config's shape. The message is toml's own, without the excerpt
    /// of the file it would quote: that line may hold a secret.
    #[error("{path}{}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Parse {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    #[error("{path}{}: {key}: {message}", line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        key: String,
        message: String,
    },
}

/// What every job has: when, where, how.
#[derive(Clone, Debug)]
pub struct JobCommon {
    pub schedule: Schedule,
    pub key: KeyTemplate,
    pub format: Format,
    pub compression: Compression,
}

/// One job instance: `[jobs.NAME]`, of a kind.
#[derive(Clone, Debug)]
pub struct JobConfig {
    /// The instance's name: its state file, spool entries' metadata, metrics label, `--job`.
    pub name: Arc<str>,
    pub labels: Labels,
    pub common: JobCommon,
    pub kind: JobKind,
}

#[derive(Clone, Debug)]
pub enum JobKind {
    PoolDf(pool_df::Settings),
    RgwUsage(rgw_usage::Settings),
}

impl JobKind {
    /// The kind's name, as `kind = "..."` spells it.
    pub fn name(&self) -> &'static str {
        match self {
            JobKind::PoolDf(_) => "pool_df",
            JobKind::RgwUsage(_) => "rgw_usage",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    /// The metrics and health listener, when configured.
    pub http: Option<HttpConfig>,
    pub time_zone: Tz,
    pub shutdown_timeout: Duration,
    pub cluster_fsid: Option<String>,
    /// Job state and the spool.
    pub state_dir: PathBuf,
    pub spool_max_bytes: u64,
    /// How often the spool is retried.
    pub flush_interval: Duration,
    /// Where snapshots are written.
    pub s3: Endpoint,
    pub bucket: String,
    /// Objects larger than this go up as multipart uploads, in parts of `multipart_part_size`.
    pub multipart_threshold: u64,
    pub multipart_part_size: u64,
    /// The enabled job instances: capacity first, then by name.
    pub jobs: Vec<JobConfig>,
    /// Secrets are written in the file itself (so its permissions matter).
    pub has_inline_secrets: bool,
    /// What is allowed but unwise, for the log and `check`.
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads, parses and resolves `path` in the process's environment.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_in(path, &Process).and_then(without_secret_errors)
    }

    /// Like [`Config::load`], but a secret that cannot be read is not fatal: it comes back as
    /// an error of its own (`check` reports each on a line and goes on), with an empty secret
    /// in its place.
    pub fn load_in(
        path: &Path,
        env: &dyn Environment,
    ) -> Result<(Config, Vec<ConfigError>), ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let (mut config, secret_errors) = resolve::resolve(path, &text, env)?;
        if config.has_inline_secrets {
            config.warnings.extend(readable_by_others(path));
        }
        Ok((config, secret_errors))
    }

    /// Parses and resolves `text` in the process's environment; `path` is only used in
    /// messages.
    pub fn from_toml(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::from_toml_in(path, text, &Process)
    }

    /// Parses and resolves `text` in `env`; any secret that cannot be read is an error.
    pub fn from_toml_in(
        path: &Path,
        text: &str,
        env: &dyn Environment,
    ) -> Result<Config, ConfigError> {
        resolve::resolve(path, text, env).and_then(without_secret_errors)
    }

    /// The enabled instance named `name`.
    pub fn job(&self, name: &str) -> Option<&JobConfig> {
        self.jobs.iter().find(|j| &*j.name == name)
    }
}

/// A config to run with: the first secret that could not be read fails it.
fn without_secret_errors(
    (config, secret_errors): (Config, Vec<ConfigError>),
) -> Result<Config, ConfigError> {
    match secret_errors.into_iter().next() {
        None => Ok(config),
        Some(e) => Err(e),
    }
}

/// A warning when `path` can be read by users other than its owner and group.
fn readable_by_others(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (mode & 0o004 != 0).then(|| {
        format!(
            "{} holds secrets and every user can read it (mode {:o}): chmod 600 (or 640 with \
             the exporter's group), or move the secrets to {{ file = ... }} / {{ credential = ... }}",
            path.display(),
            mode & 0o777
        )
    })
}
