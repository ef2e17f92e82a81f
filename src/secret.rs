//! Secrets (S3 keys, mgr passwords) and where they come from.
//!
//! A [`Secret`] prints as `[redacted]` in `Debug` and `Display`, so no log line, error or panic
//! message can carry one by accident. The config names a secret in one of three ways:
//!
//! ```toml
//! secret_key = "literal value"                      # in the file itself
//! secret_key = { env = "EXPORTER_SECRET_KEY" }      # from the environment
//! secret_key = { file = "/run/credentials/x/key" }  # from a file (trailing newline trimmed)
//! secret_key = { credential = "secret_key" }        # systemd LoadCredential=, from
//!                                                   # $CREDENTIALS_DIRECTORY/secret_key
//! ```

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

/// A value that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The value itself, for signing and authentication only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where a secret is read from, as written in the config.
#[derive(Clone, Deserialize)]
#[serde(
    untagged,
    expecting = "a string, { env = \"VARIABLE\" }, { file = \"/path\" } or { credential = \"NAME\" }"
)]
pub enum SecretSource {
    Inline(Secret),
    Env { env: String },
    File { file: PathBuf },
    Credential { credential: String },
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::Inline(_) => f.write_str("Inline([redacted])"),
            SecretSource::Env { env } => write!(f, "Env({env})"),
            SecretSource::File { file } => write!(f, "File({})", file.display()),
            SecretSource::Credential { credential } => write!(f, "Credential({credential})"),
        }
    }
}

/// Why a secret could not be read. Names the source, never the value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set or not valid UTF-8")]
    EnvMissing(String),
    #[error("cannot read secret file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0} is empty")]
    Empty(String),
    #[error(
        "credential {0}: $CREDENTIALS_DIRECTORY is not set (run under systemd with LoadCredential=)"
    )]
    NoCredentials(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Holder {
        key: SecretSource,
    }

    fn parse(text: &str) -> Result<SecretSource, toml::de::Error> {
        toml::from_str::<Holder>(text).map(|h| h.key)
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        let src = parse("key = \"hunter2\"").unwrap();
        assert!(!format!("{src:?}").contains("hunter2"));
    }

    #[test]
    fn an_unknown_shape_is_explained() {
        let err = parse("key = { vault = \"x\" }").unwrap_err().to_string();
        assert!(err.contains("{ env = \"VARIABLE\" }"), "{err}");
    }
}
