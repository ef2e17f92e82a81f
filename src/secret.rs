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

impl SecretSource {
    /// Reads the secret now. An empty value is refused: it would only fail later, less clearly.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        let (value, origin) = match self {
            SecretSource::Inline(s) => (s.0.clone(), "inline value".to_string()),
            SecretSource::Env { env } => (
                std::env::var(env).map_err(|_| SecretError::EnvMissing(env.clone()))?,
                format!("environment variable {env}"),
            ),
            SecretSource::File { file } => read_secret_file(file)?,
            SecretSource::Credential { credential } => {
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY")
                    .ok_or_else(|| SecretError::NoCredentials(credential.clone()))?;
                read_secret_file(&PathBuf::from(dir).join(credential))?
            }
        };
        if value.is_empty() {
            return Err(SecretError::Empty(origin));
        }
        Ok(Secret(value))
    }
}

/// A secret file's text, without its trailing newline, and where it came from.
fn read_secret_file(file: &std::path::Path) -> Result<(String, String), SecretError> {
    let text = std::fs::read_to_string(file).map_err(|source| SecretError::File {
        path: file.to_path_buf(),
        source,
    })?;
    Ok((
        text.trim_end_matches(['\r', '\n']).to_string(),
        format!("secret file {}", file.display()),
    ))
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
    fn reads_from_file_trimming_the_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        std::fs::write(&path, "s3cret\n").unwrap();
        let src = parse(&format!("key = {{ file = {:?} }}", path)).unwrap();
        assert_eq!(src.resolve().unwrap().expose(), "s3cret");
    }

    #[test]
    fn missing_sources_name_the_source_not_the_value() {
        let src = parse("key = { env = \"CSE_TEST_SURELY_UNSET_VARIABLE\" }").unwrap();
        let err = src.resolve().unwrap_err().to_string();
        assert!(err.contains("CSE_TEST_SURELY_UNSET_VARIABLE"), "{err}");
        let src = parse("key = { file = \"/nonexistent/secret\" }").unwrap();
        assert!(src
            .resolve()
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/secret"));
        let src = parse("key = \"\"").unwrap();
        assert!(src.resolve().is_err());
    }

    #[test]
    fn credentials_come_from_the_systemd_credentials_directory() {
        let src = parse("key = { credential = \"secret_key\" }").unwrap();
        // The only test that touches this variable.
        std::env::remove_var("CREDENTIALS_DIRECTORY");
        let err = src.resolve().unwrap_err().to_string();
        assert!(err.contains("LoadCredential"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret_key"), "from-systemd\n").unwrap();
        std::env::set_var("CREDENTIALS_DIRECTORY", dir.path());
        assert_eq!(src.resolve().unwrap().expose(), "from-systemd");
    }

    #[test]
    fn an_unknown_shape_is_explained() {
        let err = parse("key = { vault = \"x\" }").unwrap_err().to_string();
        assert!(err.contains("{ env = \"VARIABLE\" }"), "{err}");
    }
}
