//! From the file's shapes to the settings each module runs with.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono_tz::Tz;
use toml::Spanned;
use url::Url;

use super::env::Environment;
use super::raw::{self, Ambiguous, RawAddressing, RawCephSource, RawConfig, RawJob, RawRgw};
use super::{Config, ConfigError, JobCommon, JobConfig, JobKind};
use crate::ceph_source::CephSource;
use crate::format::{Compression, Format};
use crate::jobs::{pool_df, rgw_usage};
use crate::keys::KeyTemplate;
use crate::listener::HttpConfig;
use crate::s3::retry::RetryPolicy;
use crate::s3::{Addressing, Credentials, Endpoint, SignatureVersion, Signing};
use crate::schedule::Schedule;
use crate::secret::{Secret, SecretError, SecretSource};
use crate::snapshot::Labels;
use crate::window::WindowLength;

const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_MAX_RESPONSE: u64 = 256 * 1024 * 1024;

/// The kinds a job instance can be, with the key an instance of each gets by default.
const KINDS: [(&str, &str); 2] = [
    ("pool_df", "pool.%Y-%m-%d/%H/%M/%S"),
    ("rgw_usage", "usage.%Y-%m-%d/%H/%M/%S"),
];

/// Keys only some kinds have, with the kind.
const KIND_KEYS: [(&str, &str); 11] = [
    ("detail", "pool_df"),
    ("source", "pool_df"),
    ("rgw", "rgw_usage"),
    ("window", "rgw_usage"),
    ("show_entries", "rgw_usage"),
    ("max_buckets", "rgw_usage"),
    ("uid", "rgw_usage"),
    ("settle", "rgw_usage"),
    ("catch_up_limit", "rgw_usage"),
    ("trim_after", "rgw_usage"),
    ("trim_limit", "rgw_usage"),
];

/// Parses `text` and resolves it in `env`. Secrets that cannot be read come back apart, each
/// as its own error (an empty secret stands in), so that `check` can report them and go on.
pub fn resolve(
    path: &Path,
    text: &str,
    env: &dyn Environment,
) -> Result<(Config, Vec<ConfigError>), ConfigError> {
    let cx = Ctx {
        path,
        text,
        env,
        inline_secret: Cell::new(false),
        secret_errors: RefCell::new(Vec::new()),
    };
    let raw = raw::parse(text).map_err(|e| cx.parse_error(&e))?;
    let config = cx.config(raw)?;
    Ok((config, cx.secret_errors.into_inner()))
}

/// What resolving reads and reports with: the text (for line numbers), the environment.
struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
    env: &'a dyn Environment,
    /// Set when a secret is written in the file itself.
    inline_secret: Cell<bool>,
    secret_errors: RefCell<Vec<ConfigError>>,
}

impl Ctx<'_> {
    fn err(
        &self,
        span: Option<std::ops::Range<usize>>,
        key: &str,
        msg: impl ToString,
    ) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            line: span.map(|s| self.line_of(s.start)),
            key: key.to_string(),
            message: msg.to_string(),
        }
    }

    /// Counting newlines, not `lines()`: a span at a line's start (a `[table]`) is on that line.
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
            .is_some_and(raw::holds_secret);
        if secret_line {
            message = raw::mask_quoted(&message);
        }
        ConfigError::Parse {
            path: self.path.to_path_buf(),
            line,
            message,
        }
    }

    /// The secret `src` names. One that cannot be read is recorded, and an empty one stands in.
    fn secret(&self, src: &SecretSource, key: &str) -> Secret {
        if matches!(src, SecretSource::Inline(_)) {
            self.inline_secret.set(true);
        }
        read_secret(src, self.env).unwrap_or_else(|e| {
            self.secret_errors.borrow_mut().push(self.err(None, key, e));
            Secret::new("")
        })
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

    fn time_zone(&self, tz: &Spanned<String>, key: &str) -> Result<Tz, ConfigError> {
        tz.get_ref().parse::<Tz>().map_err(|_| {
            self.err(
                Some(tz.span()),
                key,
                format!(
                    "unknown time zone {:?} (want an IANA name such as UTC or Europe/Berlin)",
                    tz.get_ref()
                ),
            )
        })
    }

    fn config(&self, raw: RawConfig) -> Result<Config, ConfigError> {
        let time_zone = match &raw.exporter.time_zone {
            None => Tz::UTC,
            Some(tz) => self.time_zone(tz, "exporter.time_zone")?,
        };
        let s3 = self.s3_endpoint(&raw.s3)?;
        if raw.s3.bucket.is_empty() {
            return Err(self.err(None, "s3.bucket", "must not be empty"));
        }
        let rgw = self.rgw_endpoint(&s3, raw.rgw.as_ref(), "rgw")?;

        let mut jobs = Vec::new();
        for (name, job) in raw.jobs {
            if let Some(j) = self.job(&name, job, &rgw, time_zone)? {
                jobs.push(j);
            }
        }
        jobs.sort_by_key(|j| (!matches!(j.kind, JobKind::PoolDf(_)), j.name.clone()));
        self.distinct_keys(&jobs)?;

        let http = match raw.http {
            None => None,
            Some(h) => Some(HttpConfig {
                listen: match &h.listen {
                    None => std::net::SocketAddr::from(([127, 0, 0, 1], 9184)),
                    Some(l) => l.get_ref().parse().map_err(|e| {
                        self.err(
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
            return Err(self.err(
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
                self.env
                    .state_directory()
                    .unwrap_or_else(|| PathBuf::from("/var/lib/ceph-stats-exporter"))
            }),
            spool_max_bytes: raw.exporter.spool_max_bytes.unwrap_or(1 << 30),
            flush_interval: raw
                .exporter
                .flush_interval
                .unwrap_or(Duration::from_secs(30)),
            s3,
            bucket: raw.s3.bucket,
            jobs,
            has_inline_secrets: self.inline_secret.get(),
            warnings: Vec::new(),
        })
    }

    fn s3_endpoint(&self, e: &raw::RawS3) -> Result<Endpoint, ConfigError> {
        let fallback = RetryPolicy::default();
        Ok(Endpoint {
            url: self.url(&e.endpoint, "s3.endpoint")?,
            credentials: Credentials {
                access_key: self
                    .secret(&e.access_key, "s3.access_key")
                    .expose()
                    .to_string(),
                secret_key: self.secret(&e.secret_key, "s3.secret_key"),
            },
            addressing: match e.addressing {
                RawAddressing::Path => Addressing::Path,
                RawAddressing::VirtualHost => Addressing::VirtualHost,
            },
            connect_timeout: e.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT),
            timeout: e.timeout.unwrap_or(DEFAULT_TIMEOUT),
            max_response_bytes: DEFAULT_MAX_RESPONSE,
            retry: RetryPolicy {
                retries: e.retries.unwrap_or(fallback.retries),
                base: e.retry_base.unwrap_or(fallback.base),
                max: e.retry_max.unwrap_or(fallback.max),
            },
            signing: self.signing(e.signature, e.region.as_ref(), &Signing::default(), "s3")?,
        })
    }

    /// The admin endpoint `r` describes, each key it leaves out taken from `base`.
    fn rgw_endpoint(
        &self,
        base: &Endpoint,
        r: Option<&RawRgw>,
        table: &str,
    ) -> Result<Endpoint, ConfigError> {
        let Some(r) = r else {
            return Ok(base.clone());
        };
        let at = |k: &str| format!("{table}.{k}");
        Ok(Endpoint {
            url: match &r.endpoint {
                Some(u) => self.url(u, &at("endpoint"))?,
                None => base.url.clone(),
            },
            credentials: Credentials {
                access_key: match &r.access_key {
                    Some(a) => self.secret(a, &at("access_key")).expose().to_string(),
                    None => base.credentials.access_key.clone(),
                },
                secret_key: match &r.secret_key {
                    Some(s) => self.secret(s, &at("secret_key")),
                    None => base.credentials.secret_key.clone(),
                },
            },
            addressing: Addressing::Path,
            connect_timeout: r.connect_timeout.unwrap_or(base.connect_timeout),
            timeout: r.timeout.unwrap_or(base.timeout),
            max_response_bytes: r.max_response_bytes.unwrap_or(base.max_response_bytes),
            retry: RetryPolicy {
                retries: r.retries.unwrap_or(base.retry.retries),
                base: r.retry_base.unwrap_or(base.retry.base),
                max: r.retry_max.unwrap_or(base.retry.max),
            },
            signing: self.signing(r.signature, r.region.as_ref(), &base.signing, table)?,
        })
    }

    /// `signature` and `region`, each defaulting to `fallback`'s.
    fn signing(
        &self,
        signature: Option<SignatureVersion>,
        region: Option<&Spanned<String>>,
        fallback: &Signing,
        table: &str,
    ) -> Result<Signing, ConfigError> {
        let region = match region {
            None => fallback.region.clone(),
            // It is a field of the v4 credential scope (`AK/date/REGION/s3/aws4_request`).
            Some(r) if r.get_ref().is_empty() || !r.get_ref().chars().all(region_char) => {
                return Err(self.err(
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

    /// One `[jobs.NAME]` table; `None` when it is disabled.
    fn job(
        &self,
        name: &str,
        table: Spanned<RawJob>,
        rgw: &Endpoint,
        time_zone: Tz,
    ) -> Result<Option<JobConfig>, ConfigError> {
        let span = table.span();
        let j = table.into_inner();
        let here = format!("jobs.{name}");
        let at = |k: &str| format!("{here}.{k}");
        if !is_instance_name(name) {
            return Err(self.err(
                Some(span),
                &here,
                "a job name is 1 to 64 ASCII letters, digits, '_' or '-' (it names the job's \
                 state file and metrics)",
            ));
        }
        let (kind, default_key) = match &j.kind {
            Some(k) => KINDS
                .into_iter()
                .find(|(kind, _)| kind == k.get_ref())
                .ok_or_else(|| {
                    self.err(
                        Some(k.span()),
                        &at("kind"),
                        format!("unknown kind {:?} (want pool_df or rgw_usage)", k.get_ref()),
                    )
                })?,
            None => KINDS
                .into_iter()
                .find(|(kind, _)| *kind == name)
                .ok_or_else(|| {
                    self.err(
                        Some(span.clone()),
                        &here,
                        "needs `kind = \"pool_df\"` or `kind = \"rgw_usage\"` (only jobs named \
                     after a kind may leave it out)",
                    )
                })?,
        };
        if !j.enabled {
            return Ok(None);
        }
        self.refuse_other_kinds(&j, kind, &here)?;
        let common = self.common(&j, &here, default_key, &span)?;
        let labels = Labels {
            cluster: self.label(j.cluster.as_ref(), &at("cluster"))?,
            zone: self.label(j.zone.as_ref(), &at("zone"))?,
        };
        let kind = match kind {
            "pool_df" => JobKind::PoolDf(pool_df::Settings {
                detail: j.detail.map(Spanned::into_inner).unwrap_or_default(),
                source: self.ceph_source(j.source, &at("source"))?,
            }),
            _ => {
                let window = match &j.window {
                    None => WindowLength::Hours(1),
                    Some(w) => w
                        .get_ref()
                        .parse()
                        .map_err(|e| self.err(Some(w.span()), &at("window"), e))?,
                };
                let schedule_span = j.schedule.as_ref().or(j.every.as_ref()).map(Spanned::span);
                covers_every_window(&common.schedule, window, self.env.now())
                    .map_err(|e| self.err(schedule_span, &at("schedule"), e))?;
                let max_buckets = self.count(
                    j.max_buckets.as_ref(),
                    crate::usage::DEFAULT_MAX_BUCKETS,
                    &at("max_buckets"),
                    "must be at least 1",
                )?;
                let show_entries = j.show_entries.as_ref().is_none_or(|s| *s.get_ref());
                if common.format == Format::Records && !show_entries {
                    return Err(self.err(
                        j.show_entries.as_ref().map(Spanned::span),
                        &at("show_entries"),
                        "format = \"records\" writes a record per bucket and category, which \
                         needs show_entries = true",
                    ));
                }
                let trim_limit = self.count(
                    j.trim_limit.as_ref(),
                    crate::trim::DEFAULT_LIMIT,
                    &at("trim_limit"),
                    "must be at least 1 (leave trim_after out to trim nothing)",
                )?;
                JobKind::RgwUsage(rgw_usage::Settings {
                    trim: j.trim_after.map(|after| crate::trim::TrimSettings {
                        after,
                        limit: trim_limit,
                    }),
                    window,
                    time_zone,
                    settle: j.settle.unwrap_or(Duration::from_secs(60)),
                    catch_up_limit: j.catch_up_limit.map_or(24, Spanned::into_inner),
                    show_entries,
                    max_buckets,
                    uid: j.uid.map(Spanned::into_inner),
                    rgw: self.rgw_endpoint(
                        rgw,
                        j.rgw.as_ref().map(Spanned::get_ref),
                        &at("rgw"),
                    )?,
                })
            }
        };
        Ok(Some(JobConfig {
            name: Arc::from(name),
            labels,
            common,
            kind,
        }))
    }

    /// A count that must be at least 1; `default` when the key is left out.
    fn count(
        &self,
        value: Option<&Spanned<usize>>,
        default: usize,
        key: &str,
        zero: &str,
    ) -> Result<usize, ConfigError> {
        match value {
            None => Ok(default),
            Some(v) if *v.get_ref() == 0 => Err(self.err(Some(v.span()), key, zero)),
            Some(v) => Ok(*v.get_ref()),
        }
    }

    /// A key of another kind, given to this instance, is a mistake worth naming.
    fn refuse_other_kinds(&self, j: &RawJob, kind: &str, here: &str) -> Result<(), ConfigError> {
        let spans = [
            j.detail.as_ref().map(Spanned::span),
            j.source.as_ref().map(Spanned::span),
            j.rgw.as_ref().map(Spanned::span),
            j.window.as_ref().map(Spanned::span),
            j.show_entries.as_ref().map(Spanned::span),
            j.max_buckets.as_ref().map(Spanned::span),
            j.uid.as_ref().map(Spanned::span),
            // `settle` holds a plain duration: no span; its presence is enough.
            j.settle.map(|_| 0..0),
            j.catch_up_limit.as_ref().map(Spanned::span),
            j.trim_after.map(|_| 0..0),
            j.trim_limit.as_ref().map(Spanned::span),
        ];
        for ((key, owner), span) in KIND_KEYS.into_iter().zip(spans) {
            if let Some(span) = span.filter(|_| owner != kind) {
                let span = (span != (0..0)).then_some(span);
                return Err(self.err(
                    span,
                    &format!("{here}.{key}"),
                    format!("is not a key of a {kind} job"),
                ));
            }
        }
        Ok(())
    }

    fn label(
        &self,
        value: Option<&Spanned<String>>,
        key: &str,
    ) -> Result<Option<String>, ConfigError> {
        let Some(v) = value else {
            return Ok(None);
        };
        let ok = !v.get_ref().is_empty()
            && v.get_ref().len() <= 64
            && v.get_ref()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:/-".contains(&b));
        if !ok {
            return Err(self.err(
                Some(v.span()),
                key,
                "a label is 1 to 64 ASCII letters, digits, '.', '_', ':', '/' or '-' (it travels \
                 in object metadata)",
            ));
        }
        Ok(Some(v.get_ref().clone()))
    }

    fn common(
        &self,
        c: &RawJob,
        here: &str,
        default_key: &str,
        table: &std::ops::Range<usize>,
    ) -> Result<JobCommon, ConfigError> {
        let at = |k: &str| format!("{here}.{k}");
        let schedule = match (&c.schedule, &c.every) {
            (Some(_), Some(e)) => {
                return Err(self.err(
                    Some(e.span()),
                    &at("every"),
                    "give either `schedule` or `every`, not both",
                ))
            }
            (None, None) => {
                return Err(self.err(
                    Some(table.clone()),
                    here,
                    "needs `schedule` (cron) or `every` (interval)",
                ))
            }
            (Some(s), None) => Schedule::cron(s.get_ref())
                .map_err(|e| self.err(Some(s.span()), &at("schedule"), e))?,
            (None, Some(e)) => {
                let d = humantime::parse_duration(e.get_ref())
                    .map_err(|err| self.err(Some(e.span()), &at("every"), err))?;
                Schedule::every(d).map_err(|err| self.err(Some(e.span()), &at("every"), err))?
            }
        };
        let (key_text, key_span) = match &c.key {
            Some(k) => (k.get_ref().as_str(), Some(k.span())),
            None => (default_key, None),
        };
        let mut key =
            KeyTemplate::parse(key_text).map_err(|e| self.err(key_span.clone(), &at("key"), e))?;
        if let Some(zone) = &c.key_time_zone {
            key = key.in_zone(self.time_zone(zone, &at("key_time_zone"))?);
            // Where the clocks go back, fires in both passes of the repeated hour could get one
            // key. Checked from a year back (catch-up and backfills name past fires) to five
            // years ahead: zone rules repeat yearly, and a reload checks again.
            if c.key_time_zone_ambiguous == Ambiguous::Refuse {
                let now = self.env.now();
                key.check_fall_backs(
                    now - chrono::TimeDelta::days(366),
                    now + chrono::TimeDelta::days(5 * 366),
                    |t| schedule.next_after(t),
                )
                .map_err(|e| self.err(Some(zone.span()), &at("key_time_zone"), e))?;
            }
        }
        // The next few fires must each get their own key, or they would overwrite each other.
        for pair in schedule.upcoming_after(self.env.now(), 4).windows(2) {
            key.check_distinguishes(pair[0], pair[1])
                .map_err(|e| self.err(key_span.clone(), &at("key"), e))?;
        }
        let compression = c
            .compression
            .as_ref()
            .map_or(Compression::None, |s| *s.get_ref());
        if compression == Compression::Gzip && !key.as_str().ends_with(".gz") {
            let span = c.compression.as_ref().map(Spanned::span);
            return Err(self.err(
                span,
                &at("compression"),
                format!(
                    "gzip objects need a key ending in .gz (query engines go by it): {:?}",
                    key.as_str()
                ),
            ));
        }
        Ok(JobCommon {
            schedule,
            key,
            format: c.format,
            compression,
        })
    }

    /// Two instances writing under one key template would overwrite each other's objects.
    fn distinct_keys(&self, jobs: &[JobConfig]) -> Result<(), ConfigError> {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        for j in jobs {
            if let Some(other) = seen.insert(j.common.key.as_str(), &j.name) {
                return Err(self.err(
                    None,
                    &format!("jobs.{}.key", j.name),
                    format!(
                        "{:?} is also the key of jobs.{other}: their objects would overwrite \
                         each other; give each instance its own key (a prefix)",
                        j.common.key.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn ceph_source(
        &self,
        raw: Option<Spanned<RawCephSource>>,
        key: &str,
    ) -> Result<CephSource, ConfigError> {
        // Inside an internally tagged enum, serde buffers the values and toml's spans are lost
        // (a `Spanned` field there fails to deserialize at all): a bad URL is located at its
        // table.
        let span = raw.as_ref().map_or(0..0, Spanned::span);
        let parse_url =
            |url: String| self.url(&Spanned::new(span.clone(), url), &format!("{key}.url"));
        Ok(match raw.map(Spanned::into_inner) {
            None => CephSource::Command {
                binary: raw::default_ceph_binary(),
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
                key: secret,
                ca_file,
                insecure_skip_verify,
                timeout,
            }) => CephSource::Restful {
                url: parse_url(url)?,
                user,
                key: self.secret(&secret, &format!("{key}.key")),
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
}

/// Reads the secret `src` names, in `env`. An empty value is refused: it would only fail
/// later, less clearly.
pub fn read_secret(src: &SecretSource, env: &dyn Environment) -> Result<Secret, SecretError> {
    let read_file = |file: &Path| -> Result<(String, String), SecretError> {
        let text = env.read(file).map_err(|source| SecretError::File {
            path: file.to_path_buf(),
            source,
        })?;
        Ok((
            text.trim_end_matches(['\r', '\n']).to_string(),
            format!("secret file {}", file.display()),
        ))
    };
    let (value, origin) = match src {
        SecretSource::Inline(s) => (s.expose().to_string(), "inline value".to_string()),
        SecretSource::Env { env: name } => (
            env.var(name)
                .ok_or_else(|| SecretError::EnvMissing(name.clone()))?,
            format!("environment variable {name}"),
        ),
        SecretSource::File { file } => read_file(file)?,
        SecretSource::Credential { credential } => {
            let dir = env
                .credentials_dir()
                .ok_or_else(|| SecretError::NoCredentials(credential.clone()))?;
            read_file(&dir.join(credential))?
        }
    };
    if value.is_empty() {
        return Err(SecretError::Empty(origin));
    }
    Ok(Secret::new(value))
}

fn region_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// A job instance's name: it names files and metrics, so it is kept plain.
fn is_instance_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Every usage window must be asked for by some fire, or it would never be archived (nor
/// caught up, since a missed window is named after the fire that should have asked for it).
fn covers_every_window(
    schedule: &Schedule,
    window: WindowLength,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(), String> {
    let longest = match window {
        WindowLength::Hours(h) => chrono::TimeDelta::hours(i64::from(h)),
        // A calendar day lasts 23 to 25 hours across DST changes.
        WindowLength::Day => chrono::TimeDelta::hours(25),
    };
    for pair in schedule.upcoming_after(now, 400).windows(2) {
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
