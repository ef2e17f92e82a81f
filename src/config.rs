//! The configuration file (TOML), read once at start and validated completely.
//!
//! Everything that can be checked without the network is checked here, and every error names
//! the file, the line and the key: a daemon that starts is a daemon whose config can work.
//! `config.example.toml` at the repository root documents every key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;
use toml::Spanned;
use url::Url;

use crate::format::Format;
use crate::keys::KeyTemplate;
use crate::s3::retry::RetryPolicy;
use crate::s3::{Addressing, Credentials, SignatureVersion, Signing};
use crate::schedule::Schedule;
use crate::secret::{SecretError, SecretSource};
use crate::window::WindowLength;

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

// ------------------------------------------------------------------ the file, as written

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    exporter: RawExporter,
    http: Option<RawHttp>,
    s3: RawEndpoint,
    rgw: Option<RawRgw>,
    #[serde(default)]
    jobs: RawJobs,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawExporter {
    time_zone: Option<Spanned<String>>,
    #[serde(default, with = "humantime_serde")]
    shutdown_timeout: Option<Duration>,
    cluster_fsid: Option<String>,
    state_dir: Option<PathBuf>,
    spool_max_bytes: Option<u64>,
    #[serde(default, with = "humantime_serde")]
    flush_interval: Option<Duration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: Option<Spanned<String>>,
    unhealthy_after: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    endpoint: Spanned<String>,
    #[serde(default = "default_bucket")]
    bucket: String,
    #[serde(default)]
    addressing: RawAddressing,
    access_key: SecretSource,
    secret_key: SecretSource,
    #[serde(default, with = "humantime_serde")]
    connect_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    timeout: Option<Duration>,
    #[serde(flatten)]
    retry: RawRetry,
    multipart_threshold: Option<u64>,
    multipart_part_size: Option<Spanned<u64>>,
    signature: Option<SignatureVersion>,
    region: Option<Spanned<String>>,
}

#[derive(Deserialize, Default)]
struct RawRetry {
    retries: Option<u32>,
    #[serde(default, with = "humantime_serde")]
    retry_base: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    retry_max: Option<Duration>,
}

impl RawRetry {
    fn over(&self, fallback: &RetryPolicy) -> RetryPolicy {
        RetryPolicy {
            retries: self.retries.unwrap_or(fallback.retries),
            base: self.retry_base.unwrap_or(fallback.base),
            max: self.retry_max.unwrap_or(fallback.max),
        }
    }
}

/// The admin API endpoint; every key defaults to the `[s3]` one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRgw {
    endpoint: Option<Spanned<String>>,
    access_key: Option<SecretSource>,
    secret_key: Option<SecretSource>,
    #[serde(default, with = "humantime_serde")]
    connect_timeout: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    timeout: Option<Duration>,
    max_response_bytes: Option<u64>,
    #[serde(flatten)]
    retry: RawRetry,
    signature: Option<SignatureVersion>,
    region: Option<Spanned<String>>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum RawAddressing {
    #[default]
    Path,
    VirtualHost,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawJobs {
    pool_df: Option<RawJob>,
    rgw_usage: Option<RawJob>,
}

/// One job's table. Both jobs share this shape so that unknown keys are refused by serde; keys
/// that belong to the other job are refused in validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    #[serde(default = "yes")]
    enabled: bool,
    schedule: Option<Spanned<String>>,
    every: Option<Spanned<String>>,
    key: Option<Spanned<String>>,
    key_time_zone: Option<Spanned<String>>,
    #[serde(default)]
    key_time_zone_ambiguous: Ambiguous,
    #[serde(default)]
    format: Format,
    // pool_df
    detail: Option<Spanned<Detail>>,
    source: Option<Spanned<RawCephSource>>,
    // rgw_usage
    window: Option<Spanned<String>>,
    show_entries: Option<Spanned<bool>>,
    max_buckets: Option<Spanned<usize>>,
    uid: Option<Spanned<String>>,
    #[serde(default, with = "humantime_serde")]
    settle: Option<Duration>,
    catch_up_limit: Option<Spanned<usize>>,
}

/// What to do when the key zone's clocks go back and two fires would get one key.
#[derive(Deserialize, Default, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Ambiguous {
    #[default]
    Refuse,
    /// The second object overwrites the first, as with the original tool.
    Accept,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
enum RawCephSource {
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
fn default_ceph_binary() -> PathBuf {
    "ceph".into()
}

// ------------------------------------------------------------------ the validated config

/// How much of the CRUSH tree a capacity snapshot keeps. Roots are always there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Detail {
    #[default]
    Roots,
    Hosts,
    Osds,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpConfig {
    pub listen: std::net::SocketAddr,
    /// Unhealthy when a job has not succeeded for this many of its periods.
    pub unhealthy_after: u32,
}

/// An HTTP(S) endpoint with its credentials and timeouts.
#[derive(Clone, Debug)]
pub struct Endpoint {
    pub url: Url,
    pub credentials: Credentials,
    pub addressing: Addressing,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub max_response_bytes: u64,
    pub retry: RetryPolicy,
    /// The signature version and, for v4, the region.
    pub signing: Signing,
}

/// Where `osd df tree` comes from.
#[derive(Clone, Debug)]
pub enum CephSource {
    /// The `ceph` CLI.
    Command {
        binary: PathBuf,
        conf: Option<PathBuf>,
        keyring: Option<PathBuf>,
        name: Option<String>,
        timeout: Duration,
    },
    /// The mgr `restful` module (deprecated upstream, still in Pacific).
    Restful {
        url: Url,
        user: String,
        key: crate::secret::Secret,
        ca_file: Option<PathBuf>,
        insecure_skip_verify: bool,
        timeout: Duration,
    },
    /// A URL answering the JSON raw or wrapped as `{"status":..,"output":{..}}`.
    Http {
        url: Url,
        ca_file: Option<PathBuf>,
        timeout: Duration,
    },
}

impl CephSource {
    /// Where the tree comes from, for messages.
    pub fn describe(&self) -> String {
        match self {
            CephSource::Command { binary, .. } => format!("`{} osd df tree`", binary.display()),
            CephSource::Restful { url, .. } => {
                format!("the mgr restful module at {}", crate::http::shown(url))
            }
            CephSource::Http { url, .. } => crate::http::shown(url),
        }
    }
}

/// What every job has: when, where, how.
#[derive(Clone, Debug)]
pub struct JobCommon {
    pub schedule: Schedule,
    pub key: KeyTemplate,
    pub format: Format,
}

#[derive(Clone, Debug)]
pub struct PoolDfConfig {
    pub common: JobCommon,
    pub detail: Detail,
    pub source: CephSource,
}

#[derive(Clone, Debug)]
pub struct RgwUsageConfig {
    pub common: JobCommon,
    pub window: WindowLength,
    pub settle: Duration,
    pub catch_up_limit: usize,
    pub show_entries: bool,
    /// The most distinct buckets one answer may hold (memory).
    pub max_buckets: usize,
    pub uid: Option<String>,
    pub rgw: Endpoint,
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
    pub pool_df: Option<PoolDfConfig>,
    pub rgw_usage: Option<RgwUsageConfig>,
    /// Secrets are written in the file itself (so its permissions matter).
    pub has_inline_secrets: bool,
    /// What is allowed but unwise, for the log and `check`.
    pub warnings: Vec<String>,
}

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_RESPONSE: u64 = 256 * 1024 * 1024;

/// Turns spans into line numbers and builds errors that name the key.
struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
    /// Set when a secret is written in the file itself.
    inline_secret: std::cell::Cell<bool>,
}

impl Ctx<'_> {
    fn err(
        &self,
        span: Option<std::ops::Range<usize>>,
        key: &str,
        msg: impl ToString,
    ) -> ConfigError {
        // Counting newlines, not `lines()`: a span at a line's start (a `[table]`) is on that line.
        let line = span.map(|s| self.line_of(s.start));
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line,
            key: key.to_string(),
            message: msg.to_string(),
        }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1
    }

    fn parse_error(&self, e: &toml::de::Error) -> ConfigError {
        let line = e.span().map(|s| self.line_of(s.start));
        let mut message = e.message().trim().to_string();
        // toml quotes a bad value in its message at times; on a line that holds a secret, no
        // quoted text is kept.
        let secret_line = line
            .and_then(|l| self.text.lines().nth(l - 1))
            .is_some_and(holds_secret);
        if secret_line {
            message = mask_quoted(&message);
        }
        ConfigError::Parse {
            path: self.path.to_path_buf(),
            line,
            message,
        }
    }

    fn secret(&self, src: &SecretSource, key: &str) -> Result<crate::secret::Secret, ConfigError> {
        if matches!(src, SecretSource::Inline(_)) {
            self.inline_secret.set(true);
        }
        src.resolve()
            .map_err(|e: SecretError| self.err(None, key, e))
    }

    fn url(&self, s: &Spanned<String>, key: &str) -> Result<Url, ConfigError> {
        let url = Url::parse(s.get_ref()).map_err(|e| self.err(Some(s.span()), key, e))?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(self.err(
                Some(s.span()),
                key,
                "must be an http:// or https:// URL with a host",
            ));
        }
        Ok(url)
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::from_toml(path, &text)?;
        if config.has_inline_secrets {
            if let Some(warning) = readable_by_others(path) {
                config.warnings.push(warning);
            }
        }
        Ok(config)
    }

    /// Parses and validates; `path` is only used in messages.
    pub fn from_toml(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let cx = Ctx {
            path,
            text,
            inline_secret: std::cell::Cell::new(false),
        };
        let raw: RawConfig = toml::from_str(text).map_err(|e| cx.parse_error(&e))?;

        let time_zone = match &raw.exporter.time_zone {
            None => Tz::UTC,
            Some(tz) => tz.get_ref().parse::<Tz>().map_err(|_| {
                cx.err(
                    Some(tz.span()),
                    "exporter.time_zone",
                    format!(
                        "unknown time zone {:?} (want an IANA name such as UTC or Europe/Berlin)",
                        tz.get_ref()
                    ),
                )
            })?,
        };

        let s3 = endpoint(&cx, &raw.s3)?;
        if raw.s3.bucket.is_empty() {
            return Err(cx.err(None, "s3.bucket", "must not be empty"));
        }

        let pool_df = match raw.jobs.pool_df {
            Some(j) if j.enabled => {
                refuse_foreign(
                    &cx,
                    "pool_df",
                    [
                        ("window", j.window.as_ref().map(Spanned::span)),
                        ("show_entries", j.show_entries.as_ref().map(Spanned::span)),
                        ("max_buckets", j.max_buckets.as_ref().map(Spanned::span)),
                        ("uid", j.uid.as_ref().map(Spanned::span)),
                        (
                            "catch_up_limit",
                            j.catch_up_limit.as_ref().map(Spanned::span),
                        ),
                    ],
                )?;
                Some(PoolDfConfig {
                    common: common(&cx, &j, "pool_df", "pool.%Y-%m-%d/%H/%M/%S")?,
                    detail: j.detail.map(Spanned::into_inner).unwrap_or_default(),
                    source: ceph_source(&cx, j.source)?,
                })
            }
            _ => None,
        };

        let rgw_usage = match raw.jobs.rgw_usage {
            Some(j) if j.enabled => {
                refuse_foreign(
                    &cx,
                    "rgw_usage",
                    [
                        ("detail", j.detail.as_ref().map(Spanned::span)),
                        ("source", j.source.as_ref().map(Spanned::span)),
                    ],
                )?;
                let window = match &j.window {
                    None => WindowLength::Hours(1),
                    Some(w) => w
                        .get_ref()
                        .parse()
                        .map_err(|e| cx.err(Some(w.span()), "jobs.rgw_usage.window", e))?,
                };
                let common = common(&cx, &j, "rgw_usage", "usage.%Y-%m-%d/%H/%M/%S")?;
                let schedule_span = j.schedule.as_ref().or(j.every.as_ref()).map(Spanned::span);
                covers_every_window(&common.schedule, window)
                    .map_err(|e| cx.err(schedule_span, "jobs.rgw_usage.schedule", e))?;
                Some(RgwUsageConfig {
                    common,
                    window,
                    settle: j.settle.unwrap_or(Duration::from_secs(60)),
                    catch_up_limit: j.catch_up_limit.map_or(24, Spanned::into_inner),
                    show_entries: j.show_entries.is_none_or(Spanned::into_inner),
                    max_buckets: match &j.max_buckets {
                        None => crate::usage::DEFAULT_MAX_BUCKETS,
                        Some(m) if *m.get_ref() == 0 => {
                            return Err(cx.err(
                                Some(m.span()),
                                "jobs.rgw_usage.max_buckets",
                                "must be at least 1",
                            ))
                        }
                        Some(m) => *m.get_ref(),
                    },
                    uid: j.uid.map(Spanned::into_inner),
                    rgw: rgw_endpoint(&cx, &s3, raw.rgw.as_ref())?,
                })
            }
            _ => None,
        };

        let http = match raw.http {
            None => None,
            Some(h) => Some(HttpConfig {
                listen: match &h.listen {
                    None => std::net::SocketAddr::from(([127, 0, 0, 1], 9184)),
                    Some(l) => l.get_ref().parse().map_err(|e| {
                        cx.err(
                            Some(l.span()),
                            "http.listen",
                            format!("{e} (want IP:PORT, e.g. 127.0.0.1:9184)"),
                        )
                    })?,
                },
                unhealthy_after: h.unhealthy_after.unwrap_or(3).max(1),
            }),
        };

        // S3 refuses parts under 5 MiB (but the last).
        let part_size = raw
            .s3
            .multipart_part_size
            .as_ref()
            .map_or(16 << 20, |p| *p.get_ref());
        if part_size < 5 << 20 {
            let span = raw.s3.multipart_part_size.as_ref().map(Spanned::span);
            return Err(cx.err(
                span,
                "s3.multipart_part_size",
                "must be at least 5 MiB (5242880): S3 refuses smaller parts",
            ));
        }

        Ok(Config {
            http,
            time_zone,
            multipart_threshold: raw.s3.multipart_threshold.unwrap_or(16 << 20),
            multipart_part_size: part_size,
            shutdown_timeout: raw
                .exporter
                .shutdown_timeout
                .unwrap_or(Duration::from_secs(30)),
            cluster_fsid: raw.exporter.cluster_fsid,
            // systemd's StateDirectory= says where, when there is one.
            state_dir: raw.exporter.state_dir.unwrap_or_else(|| {
                std::env::var_os("STATE_DIRECTORY")
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("/var/lib/ceph-stats-exporter"))
            }),
            spool_max_bytes: raw.exporter.spool_max_bytes.unwrap_or(1 << 30),
            flush_interval: raw
                .exporter
                .flush_interval
                .unwrap_or(Duration::from_secs(30)),
            s3,
            bucket: raw.s3.bucket,
            pool_df,
            rgw_usage,
            has_inline_secrets: cx.inline_secret.get(),
            warnings: Vec::new(),
        })
    }
}

fn endpoint(cx: &Ctx<'_>, e: &RawEndpoint) -> Result<Endpoint, ConfigError> {
    Ok(Endpoint {
        url: cx.url(&e.endpoint, "s3.endpoint")?,
        credentials: Credentials {
            access_key: cx
                .secret(&e.access_key, "s3.access_key")?
                .expose()
                .to_string(),
            secret_key: cx.secret(&e.secret_key, "s3.secret_key")?,
        },
        addressing: match e.addressing {
            RawAddressing::Path => Addressing::Path,
            RawAddressing::VirtualHost => Addressing::VirtualHost,
        },
        connect_timeout: e.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
        timeout: e.timeout.unwrap_or(DEFAULT_TIMEOUT),
        max_response_bytes: DEFAULT_MAX_RESPONSE,
        retry: e.retry.over(&RetryPolicy::default()),
        signing: signing(
            cx,
            e.signature,
            e.region.as_ref(),
            &Signing::default(),
            "s3",
        )?,
    })
}

/// `signature` and `region`, each defaulting to `fallback`'s.
fn signing(
    cx: &Ctx<'_>,
    signature: Option<SignatureVersion>,
    region: Option<&Spanned<String>>,
    fallback: &Signing,
    table: &str,
) -> Result<Signing, ConfigError> {
    let region = match region {
        None => fallback.region.clone(),
        // It is a field of the v4 credential scope (`AK/date/REGION/s3/aws4_request`).
        Some(r) if r.get_ref().is_empty() || !r.get_ref().chars().all(region_char) => {
            return Err(cx.err(
                Some(r.span()),
                &format!("{table}.region"),
                format!(
                    "{:?} is not a region name (letters, digits, '-', '_', '.'; for RGW its \
                     zonegroup's api_name, e.g. \"us-east-1\" or \"default\")",
                    r.get_ref()
                ),
            ))
        }
        Some(r) => r.get_ref().clone(),
    };
    Ok(Signing {
        version: signature.unwrap_or(fallback.version),
        region,
    })
}

fn region_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

fn rgw_endpoint(
    cx: &Ctx<'_>,
    s3: &Endpoint,
    rgw: Option<&RawRgw>,
) -> Result<Endpoint, ConfigError> {
    let Some(r) = rgw else {
        return Ok(s3.clone());
    };
    Ok(Endpoint {
        url: match &r.endpoint {
            Some(u) => cx.url(u, "rgw.endpoint")?,
            None => s3.url.clone(),
        },
        credentials: Credentials {
            access_key: match &r.access_key {
                Some(a) => cx.secret(a, "rgw.access_key")?.expose().to_string(),
                None => s3.credentials.access_key.clone(),
            },
            secret_key: match &r.secret_key {
                Some(s) => cx.secret(s, "rgw.secret_key")?,
                None => s3.credentials.secret_key.clone(),
            },
        },
        addressing: Addressing::Path,
        connect_timeout: r.connect_timeout.unwrap_or(s3.connect_timeout),
        timeout: r.timeout.unwrap_or(s3.timeout),
        max_response_bytes: r.max_response_bytes.unwrap_or(DEFAULT_MAX_RESPONSE),
        retry: r.retry.over(&s3.retry),
        signing: signing(cx, r.signature, r.region.as_ref(), &s3.signing, "rgw")?,
    })
}

fn common(
    cx: &Ctx<'_>,
    c: &RawJob,
    job: &str,
    default_key: &str,
) -> Result<JobCommon, ConfigError> {
    let at = |k: &str| format!("jobs.{job}.{k}");
    let schedule = match (&c.schedule, &c.every) {
        (Some(_), Some(e)) => {
            return Err(cx.err(
                Some(e.span()),
                &at("every"),
                "give either `schedule` or `every`, not both",
            ))
        }
        (None, None) => {
            return Err(cx.err(
                None,
                &format!("jobs.{job}"),
                "needs `schedule` (cron) or `every` (interval)",
            ))
        }
        (Some(s), None) => {
            Schedule::cron(s.get_ref()).map_err(|e| cx.err(Some(s.span()), &at("schedule"), e))?
        }
        (None, Some(e)) => {
            let d = humantime::parse_duration(e.get_ref())
                .map_err(|err| cx.err(Some(e.span()), &at("every"), err))?;
            Schedule::every(d).map_err(|err| cx.err(Some(e.span()), &at("every"), err))?
        }
    };
    let (key_text, key_span) = match &c.key {
        Some(k) => (k.get_ref().as_str(), Some(k.span())),
        None => (default_key, None),
    };
    let mut key =
        KeyTemplate::parse(key_text).map_err(|e| cx.err(key_span.clone(), &at("key"), e))?;
    if let Some(zone) = &c.key_time_zone {
        let tz = zone.get_ref().parse::<Tz>().map_err(|_| {
            cx.err(
                Some(zone.span()),
                &at("key_time_zone"),
                format!(
                    "unknown time zone {:?} (want an IANA name such as UTC or Asia/Shanghai)",
                    zone.get_ref()
                ),
            )
        })?;
        key = key.in_zone(tz);
        // Where the clocks go back, fires in both passes of the repeated hour could get one
        // key. Checked from a year back (catch-up and backfills name past fires) to five years
        // ahead: zone rules repeat yearly, and a reload checks again.
        if c.key_time_zone_ambiguous == Ambiguous::Refuse {
            let now = chrono::Utc::now();
            key.check_fall_backs(
                now - chrono::TimeDelta::days(366),
                now + chrono::TimeDelta::days(5 * 366),
                |t| schedule.next_after(t),
            )
            .map_err(|e| cx.err(Some(zone.span()), &at("key_time_zone"), e))?;
        }
    }
    // The next few fires must each get their own key, or they would overwrite each other.
    for pair in schedule.upcoming(4).windows(2) {
        key.check_distinguishes(pair[0], pair[1])
            .map_err(|e| cx.err(key_span.clone(), &at("key"), e))?;
    }
    Ok(JobCommon {
        schedule,
        key,
        format: c.format,
    })
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

/// Whether a config line sets one of the keys that hold secrets (`secret_key = ...`, or inline
/// in a table: `{ key = ... }`).
fn holds_secret(line: &str) -> bool {
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
fn mask_quoted(message: &str) -> String {
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

/// Every usage window must be asked for by some fire, or it would never be archived (nor
/// caught up, since a missed window is named after the fire that should have asked for it).
fn covers_every_window(schedule: &Schedule, window: WindowLength) -> Result<(), String> {
    let longest = match window {
        WindowLength::Hours(h) => chrono::TimeDelta::hours(i64::from(h)),
        // A calendar day lasts 23 to 25 hours across DST changes.
        WindowLength::Day => chrono::TimeDelta::hours(25),
    };
    for pair in schedule.upcoming(400).windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if b - a > longest {
            return Err(format!(
                "fires {a} and {b} are further apart than the {window} window: the windows \
                 between them would never be archived; fire at least once per window"
            ));
        }
    }
    Ok(())
}

/// A key of the other job, given to this one, is a mistake worth naming.
fn refuse_foreign<const N: usize>(
    cx: &Ctx<'_>,
    job: &str,
    keys: [(&str, Option<std::ops::Range<usize>>); N],
) -> Result<(), ConfigError> {
    match keys.into_iter().find(|(_, span)| span.is_some()) {
        Some((key, span)) => Err(cx.err(
            span,
            &format!("jobs.{job}.{key}"),
            format!("is not a key of the {job} job"),
        )),
        None => Ok(()),
    }
}

fn ceph_source(
    cx: &Ctx<'_>,
    raw: Option<Spanned<RawCephSource>>,
) -> Result<CephSource, ConfigError> {
    // Inside an internally tagged enum, serde buffers the values and toml's spans are lost (a
    // `Spanned` field there fails to deserialize at all): a bad URL is located at its table.
    let span = raw.as_ref().map_or(0..0, Spanned::span);
    let parse_url =
        |url: String| cx.url(&Spanned::new(span.clone(), url), "jobs.pool_df.source.url");
    Ok(match raw.map(Spanned::into_inner) {
        None => CephSource::Command {
            binary: default_ceph_binary(),
            conf: None,
            keyring: None,
            name: None,
            timeout: DEFAULT_TIMEOUT,
        },
        Some(RawCephSource::Command {
            binary,
            conf,
            keyring,
            name,
            timeout,
        }) => CephSource::Command {
            binary,
            conf,
            keyring,
            name,
            timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
        },
        Some(RawCephSource::Restful {
            url,
            user,
            key,
            ca_file,
            insecure_skip_verify,
            timeout,
        }) => CephSource::Restful {
            url: parse_url(url)?,
            user,
            key: cx.secret(&key, "jobs.pool_df.source.key")?,
            ca_file,
            insecure_skip_verify,
            timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
        },
        Some(RawCephSource::Http {
            url,
            ca_file,
            timeout,
        }) => CephSource::Http {
            url: parse_url(url)?,
            ca_file,
            timeout: timeout.unwrap_or(DEFAULT_TIMEOUT),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
[s3]
endpoint = "http://127.0.0.1:8000"
access_key = "AK"
secret_key = "SK-very-secret"

[jobs.pool_df]
every = "10s"

[jobs.rgw_usage]
schedule = "0 5 * * * *"
"#;

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(Path::new("test.toml"), text)
    }

    #[test]
    fn minimal_config_gets_the_original_tools_defaults() {
        let c = load(MINIMAL).unwrap();
        assert_eq!(c.bucket, "info");
        assert_eq!(c.time_zone, Tz::UTC);
        let p = c.pool_df.unwrap();
        assert_eq!(p.common.key.as_str(), "pool.%Y-%m-%d/%H/%M/%S");
        assert_eq!(p.common.schedule.expr(), "*/10 * * * * *");
        assert_eq!(p.common.format, Format::Text);
        let u = c.rgw_usage.unwrap();
        assert_eq!(u.window, WindowLength::Hours(1));
        assert_eq!(u.rgw.url.as_str(), "http://127.0.0.1:8000/");
        assert_eq!(u.rgw.credentials.secret_key.expose(), "SK-very-secret");
    }

    fn invalid(text: &str) -> (Option<usize>, String, String) {
        match load(text).unwrap_err() {
            ConfigError::Invalid {
                line, key, message, ..
            } => (line, key, message),
            other => panic!("expected Invalid, got {other}"),
        }
    }

    #[test]
    fn bad_values_name_the_key_and_the_line() {
        let (line, key, msg) = invalid(&MINIMAL.replace("0 5 * * * *", "0 5 * * *"));
        assert_eq!((line, key.as_str()), (Some(11), "jobs.rgw_usage.schedule"));
        assert!(msg.contains("6 fields"), "{msg}");

        let (line, key, _) = invalid(&MINIMAL.replace("\"10s\"", "\"7m\""));
        assert_eq!((line, key.as_str()), (Some(8), "jobs.pool_df.every"));

        let text = MINIMAL.replace("[jobs.rgw_usage]\n", "[jobs.rgw_usage]\nwindow = \"90m\"\n");
        let (line, key, _) = invalid(&text);
        assert_eq!((line, key.as_str()), (Some(11), "jobs.rgw_usage.window"));

        let text = format!("[exporter]\ntime_zone = \"Mars/Olympus\"\n{MINIMAL}");
        let (line, key, _) = invalid(&text);
        assert_eq!((line, key.as_str()), (Some(2), "exporter.time_zone"));

        let text = MINIMAL.replace(
            "every = \"10s\"",
            "every = \"10s\"\nkey = \"pool.%Y-%m-%d/%H/%M\"",
        );
        let (_, key, msg) = invalid(&text);
        assert_eq!(key, "jobs.pool_df.key");
        assert!(msg.contains("same key"), "{msg}");
    }

    /// MINIMAL with `lines` added to the pool_df job (after line 8).
    fn pool_df_with(lines: &str) -> String {
        MINIMAL.replace("every = \"10s\"\n", &format!("every = \"10s\"\n{lines}\n"))
    }

    #[test]
    fn key_time_zone_renders_keys_in_that_zone() {
        let fire = chrono::DateTime::parse_from_rfc3339("2026-11-22T13:05:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let c = load(&pool_df_with("key_time_zone = \"Asia/Shanghai\"")).unwrap();
        let key = c.pool_df.unwrap().common.key;
        assert_eq!(key.zone(), "Asia/Shanghai".parse::<Tz>().unwrap());
        assert_eq!(key.render(fire), "pool.2026-11-22/21/05/00");
        // The default stays UTC, and the exporter's time zone does not move keys.
        let c = load(&format!(
            "[exporter]\ntime_zone = \"Europe/Berlin\"\n{MINIMAL}"
        ))
        .unwrap();
        assert_eq!(c.pool_df.unwrap().common.key.zone(), Tz::UTC);
        assert_eq!(c.rgw_usage.unwrap().common.key.zone(), Tz::UTC);

        let (line, key, msg) = invalid(&pool_df_with("key_time_zone = \"Mars/Olympus\""));
        assert_eq!(
            (line, key.as_str()),
            (Some(9), "jobs.pool_df.key_time_zone")
        );
        assert!(msg.contains("Mars/Olympus"), "{msg}");
    }

    #[test]
    fn a_key_zone_whose_clocks_go_back_is_refused_unless_accepted_or_offset_keyed() {
        let (line, key, msg) = invalid(&pool_df_with("key_time_zone = \"Europe/Berlin\""));
        assert_eq!(
            (line, key.as_str()),
            (Some(9), "jobs.pool_df.key_time_zone")
        );
        assert!(
            msg.contains("clocks go back")
                && msg.contains("%z")
                && msg.contains("key_time_zone_ambiguous = \"accept\""),
            "{msg}"
        );
        // The usage job is checked the same way.
        let text = MINIMAL.replace(
            "[jobs.rgw_usage]\n",
            "[jobs.rgw_usage]\nkey_time_zone = \"America/New_York\"\n",
        );
        let (line, key, _) = invalid(&text);
        assert_eq!(
            (line, key.as_str()),
            (Some(11), "jobs.rgw_usage.key_time_zone")
        );

        let accepted =
            pool_df_with("key_time_zone = \"Europe/Berlin\"\nkey_time_zone_ambiguous = \"accept\"");
        let key = load(&accepted).unwrap().pool_df.unwrap().common.key;
        assert_eq!(key.zone(), "Europe/Berlin".parse::<Tz>().unwrap());
        let offset_keyed = pool_df_with(
            "key_time_zone = \"America/New_York\"\nkey = \"pool.%Y-%m-%d/%H/%M/%S%z\"",
        );
        assert!(load(&offset_keyed).is_ok());
        // "refuse" is the default, and may be written out.
        let refused =
            pool_df_with("key_time_zone = \"Europe/Berlin\"\nkey_time_zone_ambiguous = \"refuse\"");
        assert!(load(&refused).is_err());
        let err = load(&accepted.replace("\"accept\"", "\"yes\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("yes") && err.contains("line 10"), "{err}");
    }

    #[test]
    fn typos_and_wrong_types_are_parse_errors_with_position() {
        let err = load(&MINIMAL.replace("every =", "evry ="))
            .unwrap_err()
            .to_string();
        assert!(err.contains("evry") && err.contains("line 8"), "{err}");
        let err = load(&MINIMAL.replace("[jobs.pool_df]", "[jobs.pool_df]\nformat = \"xml\""))
            .unwrap_err()
            .to_string();
        assert!(err.contains("xml"), "{err}");
    }

    #[test]
    fn retry_policy_is_read_and_rgw_inherits_it() {
        let c = load(&MINIMAL.replace(
            "secret_key = \"SK-very-secret\"",
            "secret_key = \"SK-very-secret\"\nretries = 2\nretry_base = \"10ms\"",
        ))
        .unwrap();
        let want = RetryPolicy {
            retries: 2,
            base: Duration::from_millis(10),
            max: Duration::from_secs(20),
        };
        assert_eq!(c.s3.retry, want);
        assert_eq!(c.rgw_usage.unwrap().rgw.retry, want);
        let err = load(&MINIMAL.replace("access_key = \"AK\"", "access_key = \"AK\"\nretrys = 2"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("retrys"), "{err}");
        let (line, key, _) = invalid(&MINIMAL.replace("http://127.0.0.1:8000", "ftp://x"));
        assert_eq!((line, key.as_str()), (Some(3), "s3.endpoint"));
    }

    #[test]
    fn signature_and_region_default_to_v2_and_rgw_inherits_each_alone() {
        let c = load(MINIMAL).unwrap();
        assert_eq!(c.s3.signing, Signing::default());
        assert_eq!(c.s3.signing.version, SignatureVersion::V2);
        assert_eq!(c.s3.signing.region, "us-east-1");
        let with = |s3: &str, rgw: &str| {
            let text = MINIMAL
                .replace(
                    "secret_key = \"SK-very-secret\"",
                    &format!("secret_key = \"SK-very-secret\"\n{s3}"),
                )
                .replace("[jobs.pool_df]", &format!("[rgw]\n{rgw}\n[jobs.pool_df]"));
            let c = load(&text).unwrap();
            (c.s3.signing, c.rgw_usage.unwrap().rgw.signing)
        };
        let v4 = |region: &str| Signing {
            version: SignatureVersion::V4,
            region: region.into(),
        };
        let v2 = |region: &str| Signing {
            version: SignatureVersion::V2,
            region: region.into(),
        };
        assert_eq!(
            with("signature = \"v4\"", ""),
            (v4("us-east-1"), v4("us-east-1"))
        );
        assert_eq!(
            with(
                "signature = \"v4\"\nregion = \"default\"",
                "region = \"zg2\""
            ),
            (v4("default"), v4("zg2"))
        );
        assert_eq!(
            with("region = \"eu-west-1\"", "signature = \"v4\""),
            (v2("eu-west-1"), v4("eu-west-1"))
        );
        assert_eq!(
            with("signature = \"v4\"", "signature = \"v2\""),
            (v4("us-east-1"), v2("us-east-1"))
        );
        let err = load(&MINIMAL.replace(
            "access_key = \"AK\"",
            "access_key = \"AK\"\nsignature = \"v3\"",
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("line 5") && err.contains("v3"), "{err}");
        for bad in ["", "us east", "a/b"] {
            let (line, key, _) = invalid(&MINIMAL.replace(
                "access_key = \"AK\"",
                &format!("access_key = \"AK\"\nregion = \"{bad}\""),
            ));
            assert_eq!((line, key.as_str()), (Some(5), "s3.region"), "{bad:?}");
        }
    }

    #[test]
    fn secrets_from_env_and_missing_env_is_named() {
        let text = MINIMAL.replace(
            "\"SK-very-secret\"",
            "{ env = \"CSE_TEST_UNSET_SECRET_VAR\" }",
        );
        let (_, key, msg) = invalid(&text);
        assert_eq!(key, "s3.secret_key");
        assert!(msg.contains("CSE_TEST_UNSET_SECRET_VAR"));
    }

    #[test]
    fn parse_errors_on_a_secret_line_never_quote_the_secret() {
        let broken = [
            r#"secret_key = "SK-very-secret"#,
            r#"secret_key = "SK-very-secret" trailing"#,
            r#"secret_key = "SK-very-secret\q""#,
            r#"secret_key = 'SK-very-secret"#,
            r#"secret_key = SK-very-secret"#,
            r#"access_key = ["SK-very-secret"]"#,
        ];
        for line in broken {
            let text = MINIMAL.replace(r#"secret_key = "SK-very-secret""#, line);
            let err = load(&text).unwrap_err().to_string();
            assert!(!err.contains("SK-very"), "{line}: {err}");
            assert!(err.contains("test.toml line 5"), "{line}: {err}");
        }
    }

    #[test]
    fn a_secret_looking_key_is_told_from_its_neighbours() {
        assert!(holds_secret(r#"secret_key = "x""#));
        assert!(holds_secret(r#"source = { type = "restful", key = "x" }"#));
        assert!(holds_secret("  password=1"));
        assert!(!holds_secret(
            r#"key = "pool.%Y""#.replace("key", "monkey").as_str()
        ));
        assert!(!holds_secret(r#"keyring = "/etc/ceph/k""#));
        assert_eq!(
            mask_quoted("invalid type: string \"s3cr3t\", expected `u32`"),
            "invalid type: string \"***\", expected `***`"
        );
        assert_eq!(mask_quoted("cut \"s3cr"), "cut \"***");
    }

    #[test]
    fn a_source_url_is_described_without_its_password() {
        let text = MINIMAL.replace(
            "every = \"10s\"\n",
            "every = \"10s\"\n[jobs.pool_df.source]\ntype = \"http\"\n\
             url = \"http://admin:hunter2@127.0.0.1:8080/osd\"\n",
        );
        let c = load(&text).unwrap();
        let described = c.pool_df.unwrap().source.describe();
        assert_eq!(described, "http://admin:***@127.0.0.1:8080/osd");
    }

    #[test]
    fn a_world_readable_file_with_inline_secrets_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, MINIMAL).unwrap();
        let mode = |m| std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m));
        mode(0o644).unwrap();
        let warnings = Config::load(&path).unwrap().warnings;
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].contains("mode 644") && warnings[0].contains("chmod 600"));
        mode(0o640).unwrap();
        assert!(Config::load(&path).unwrap().warnings.is_empty());
        // Secrets from the environment: the file's mode does not matter.
        let from_env = MINIMAL
            .replace(r#""AK""#, r#"{ env = "PATH" }"#)
            .replace(r#""SK-very-secret""#, r#"{ env = "PATH" }"#);
        std::fs::write(&path, from_env).unwrap();
        mode(0o644).unwrap();
        assert!(Config::load(&path).unwrap().warnings.is_empty());
    }

    #[test]
    fn max_buckets_defaults_and_must_be_positive() {
        let c = load(MINIMAL).unwrap();
        assert_eq!(
            c.rgw_usage.unwrap().max_buckets,
            crate::usage::DEFAULT_MAX_BUCKETS
        );
        let text = MINIMAL.replace(
            "schedule = \"0 5 * * * *\"",
            "schedule = \"0 5 * * * *\"\nmax_buckets = 500",
        );
        assert_eq!(load(&text).unwrap().rgw_usage.unwrap().max_buckets, 500);
        let (line, key, msg) = invalid(&text.replace("500", "0"));
        assert_eq!(
            (line, key.as_str()),
            (Some(12), "jobs.rgw_usage.max_buckets")
        );
        assert!(msg.contains("at least 1"), "{msg}");
    }

    #[test]
    fn debug_output_never_holds_the_secret() {
        let c = load(MINIMAL).unwrap();
        assert!(!format!("{c:?}").contains("SK-very-secret"));
    }

    #[test]
    fn http_and_restful_sources_load() {
        let text = MINIMAL.replace(
            "every = \"10s\"\n",
            "every = \"10s\"\n[jobs.pool_df.source]\ntype = \"http\"\nurl = \"http://127.0.0.1:5000/df\"\ntimeout = \"3s\"\n",
        );
        let p = load(&text).unwrap().pool_df.unwrap();
        assert!(
            matches!(&p.source, CephSource::Http { url, timeout, .. }
                if url.as_str() == "http://127.0.0.1:5000/df" && *timeout == Duration::from_secs(3)),
            "{:?}",
            p.source
        );
        let text = text.replace(
            "type = \"http\"",
            "type = \"restful\"\nuser = \"exporter\"\nkey = \"k\"",
        );
        let p = load(&text).unwrap().pool_df.unwrap();
        assert!(
            matches!(p.source, CephSource::Restful { .. }),
            "{:?}",
            p.source
        );
        let (line, key, _) = invalid(&text.replace("http://127.0.0.1:5000/df", "ftp://x"));
        // At its table: the span of a value inside a tagged enum is lost.
        assert_eq!((line, key.as_str()), (Some(9), "jobs.pool_df.source.url"));
    }

    #[test]
    fn disabled_jobs_are_absent() {
        let c =
            load(&MINIMAL.replace("[jobs.pool_df]", "[jobs.pool_df]\nenabled = false")).unwrap();
        assert!(c.pool_df.is_none());
        assert!(c.rgw_usage.is_some());
    }
}
