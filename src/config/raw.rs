//! The config file as written: TOML shapes, nothing read from outside the file.
//!
//! Parsing only checks shapes (types, unknown keys), with the span of every value that a later
//! check may need to point at. What the values mean, and what they need from the environment
//! (secrets, the state directory, the clock), is [`super::resolve`]'s business.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::format::{Compression, Format};
use crate::jobs::pool_df::Detail;
use crate::s3::SignatureVersion;
use crate::secret::SecretSource;

/// The whole file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub exporter: RawExporter,
    pub http: Option<RawHttp>,
    pub s3: RawS3,
    pub rgw: Option<RawRgw>,
    /// Job instances by name. `[jobs.pool_df]` and `[jobs.rgw_usage]` name their kind.
    #[serde(default)]
    pub jobs: BTreeMap<String, Spanned<RawJob>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawExporter {
    pub time_zone: Option<Spanned<String>>,
    #[serde(default, with = "humantime_serde")]
    pub shutdown_timeout: Option<Duration>,
    pub cluster_fsid: Option<String>,
    pub state_dir: Option<PathBuf>,
    pub spool_max_bytes: Option<u64>,
    #[serde(default, with = "humantime_serde")]
    pub flush_interval: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHttp {
    pub listen: Option<Spanned<String>>,
    pub unhealthy_after: Option<u32>,
}

/// `[s3]`: where objects are written. The fields are spelled out, not flattened from shared
/// structs: serde loses the position of an unknown key inside a flattened table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawS3 {
    pub endpoint: Spanned<String>,
    #[serde(default = "default_bucket")]
    pub bucket: String,
    #[serde(default)]
    pub addressing: RawAddressing,
    pub access_key: SecretSource,
    pub secret_key: SecretSource,
    #[serde(default, with = "humantime_serde")]
    pub connect_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    pub retries: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub retry_base: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub retry_max: Option<Duration>,
    pub multipart_threshold: Option<u64>,
    pub multipart_part_size: Option<Spanned<u64>>,
    pub signature: Option<SignatureVersion>,
    pub region: Option<Spanned<String>>,
}

/// The admin API endpoint (`[rgw]`, or a job's own `rgw = { ... }`); every key defaults to the
/// one it overrides.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawRgw {
    pub endpoint: Option<Spanned<String>>,
    pub access_key: Option<SecretSource>,
    pub secret_key: Option<SecretSource>,
    #[serde(default, with = "humantime_serde")]
    pub connect_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    pub max_response_bytes: Option<u64>,
    pub retries: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    pub retry_base: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub retry_max: Option<Duration>,
    pub signature: Option<SignatureVersion>,
    pub region: Option<Spanned<String>>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
pub enum RawAddressing {
    #[default]
    Path,
    VirtualHost,
}

/// One job instance's table. Every kind shares this shape so that unknown keys are refused by
/// serde; keys that belong to another kind are refused when resolving.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJob {
    /// `pool_df` or `rgw_usage`; may be left out when the instance is named after its kind.
    pub kind: Option<Spanned<String>>,
    #[serde(default = "yes")]
    pub enabled: bool,
    pub schedule: Option<Spanned<String>>,
    pub every: Option<Spanned<String>>,
    pub key: Option<Spanned<String>>,
    pub key_time_zone: Option<Spanned<String>>,
    #[serde(default)]
    pub key_time_zone_ambiguous: Ambiguous,
    #[serde(default)]
    pub format: Format,
    pub compression: Option<Spanned<Compression>>,
    /// Labels of the operator's choosing, carried in JSON bodies and object metadata.
    pub cluster: Option<Spanned<String>>,
    pub zone: Option<Spanned<String>>,
    // pool_df
    pub detail: Option<Spanned<Detail>>,
    pub source: Option<Spanned<RawCephSource>>,
    // rgw_usage
    pub rgw: Option<Spanned<RawRgw>>,
    pub window: Option<Spanned<String>>,
    pub show_entries: Option<Spanned<bool>>,
    pub max_buckets: Option<Spanned<usize>>,
    pub uid: Option<Spanned<String>>,
    #[serde(default, with = "humantime_serde")]
    pub settle: Option<Duration>,
    pub catch_up_limit: Option<Spanned<usize>>,
    /// Trim the usage log of windows this much older than their end, once verified archived.
    #[serde(default, with = "humantime_serde")]
    pub trim_after: Option<Duration>,
    pub trim_limit: Option<Spanned<usize>>,
}

/// What to do when the key zone's clocks go back and two fires would get one key.
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Ambiguous {
    #[default]
    Refuse,
    /// The second object overwrites the first, as with the original tool.
    Accept,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RawCephSource {
    Command {
        #[serde(default = "default_ceph_binary")]
        binary: PathBuf,
        conf: Option<PathBuf>,
        keyring: Option<PathBuf>,
        name: Option<String>,
        #[serde(default, with = "humantime_serde")]
        timeout: Option<Duration>,
    },
    Restful {
        url: String,
        user: String,
        key: SecretSource,
        ca_file: Option<PathBuf>,
        #[serde(default)]
        insecure_skip_verify: bool,
        #[serde(default, with = "humantime_serde")]
        timeout: Option<Duration>,
    },
    Http {
        url: String,
        ca_file: Option<PathBuf>,
        #[serde(default, with = "humantime_serde")]
        timeout: Option<Duration>,
    },
}

fn yes() -> bool {
    true
}

fn default_bucket() -> String {
    "info".into()
}

pub fn default_ceph_binary() -> PathBuf {
    "ceph".into()
}

/// Parses the text of a config file.
pub fn parse(text: &str) -> Result<RawConfig, toml::de::Error> {
    toml::from_str(text)
}

/// Whether a config line sets one of the keys that hold secrets (`secret_key = ...`, or inline
/// in a table: `{ key = ... }`).
pub fn holds_secret(line: &str) -> bool {
    ["access_key", "secret_key", "key", "password"]
        .iter()
        .any(|name| {
            line.match_indices(name).any(|(at, _)| {
                let before = line[..at].chars().next_back();
                let after = line[at + name.len()..].trim_start();
                !before.is_some_and(|c| c.is_alphanumeric() || c == '_') && after.starts_with('=')
            })
        })
}

/// `message` with whatever stands between quotes or backticks replaced by `***`.
pub fn mask_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut open: Option<char> = None;
    for c in message.chars() {
        match open {
            Some(q) if c == q => {
                out.push_str("***");
                out.push(c);
                open = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '"' || c == '`' || c == '\'' {
                    open = Some(c);
                }
            }
        }
    }
    if open.is_some() {
        out.push_str("***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_looking_key_is_told_from_its_neighbours() {
        assert!(holds_secret(r#"secret_key = "x""#));
        assert!(holds_secret(r#"source = { type = "restful", key = "x" }"#));
        assert!(holds_secret("  password=1"));
        assert!(!holds_secret(r#"monkey = "pool.%Y""#));
        assert!(!holds_secret(r#"keyring = "/etc/ceph/k""#));
        assert_eq!(
            mask_quoted("invalid type: string \"s3cr3t\", expected `u32`"),
            "invalid type: string \"***\", expected `***`"
        );
        assert_eq!(mask_quoted("cut \"s3cr"), "cut \"***");
    }
}
