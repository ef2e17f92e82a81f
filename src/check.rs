//! `ceph-stats-exporter check`: everything an operator gets wrong, verified against the real
//! services, one line each, with what to do when it fails.

use std::time::SystemTime;

use chrono::{DateTime, Utc};

use crate::ceph_source;
use crate::config::{Config, JobKind};
use crate::http;
use crate::osd_df;
use crate::s3::Endpoint;
use crate::s3::{S3Client, S3Error};
use crate::state::{write_atomic, StateDir};
use crate::zones;

/// RGW refuses signatures more than 15 minutes off; warn well before.
const SKEW_WARN_SECS: i64 = 60;
const SKEW_FAIL_SECS: i64 = 15 * 60;

/// How a verified thing turned out: a warning is worth reading but does not fail `check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Pass,
    Warn,
    Fail,
}

/// One verified thing.
#[derive(Debug, PartialEq, Eq)]
pub struct Finding {
    pub level: Level,
    pub what: String,
    /// On a warning or failure, what was found and what to do.
    pub detail: String,
}

impl Finding {
    fn pass(what: impl Into<String>) -> Finding {
        Finding {
            level: Level::Pass,
            what: what.into(),
            detail: String::new(),
        }
    }

    pub fn fail(what: impl Into<String>, detail: impl Into<String>) -> Finding {
        Finding {
            level: Level::Fail,
            what: what.into(),
            detail: detail.into(),
        }
    }

    fn warn(what: impl Into<String>, detail: impl Into<String>) -> Finding {
        Finding {
            level: Level::Warn,
            ..Finding::fail(what, detail)
        }
    }

    pub fn ok(&self) -> bool {
        self.level != Level::Fail
    }

    fn from_result<E: std::fmt::Display>(what: String, r: Result<String, E>) -> Finding {
        match r {
            Ok(extra) if extra.is_empty() => Finding::pass(what),
            Ok(extra) => Finding::pass(format!("{what}: {extra}")),
            Err(e) => Finding::fail(what, e.to_string()),
        }
    }
}

/// Runs every check a config calls for. The config itself (and its secrets) already loaded.
pub async fn run(config: &Config) -> Vec<Finding> {
    let mut out = Vec::new();
    out.push(state_dir(config));
    out.extend(endpoint(&config.s3, "s3").await);
    let s3 = match S3Client::new(&config.s3) {
        Ok(c) => c,
        Err(e) => {
            out.push(Finding::fail("s3 client", e.to_string()));
            return out;
        }
    };
    out.push(bucket_writable(&s3, &config.bucket).await);
    for job in &config.jobs {
        let name = &job.name;
        match &job.kind {
            JobKind::PoolDf(p) => {
                let what = format!("{name}: {} answers", p.source.describe());
                let r = async {
                    let json = ceph_source::fetch_osd_df_tree(&p.source)
                        .await
                        .map_err(|e| e.to_string())?;
                    let report = osd_df::parse(&json).map_err(|e| e.to_string())?;
                    let roots: Vec<_> = report.roots.iter().map(|r| r.name.as_str()).collect();
                    Ok::<_, String>(format!("CRUSH roots {}", roots.join(", ")))
                }
                .await;
                out.push(Finding::from_result(what, r));
            }
            JobKind::RgwUsage(u) => {
                if u.rgw.url != config.s3.url
                    || u.rgw.credentials.access_key != config.s3.credentials.access_key
                {
                    out.extend(endpoint(&u.rgw, &format!("{name}: rgw")).await);
                }
                out.push(usage_caps(&u.rgw, name).await);
                if u.trim.is_some() {
                    out.push(trim_caps(&u.rgw, name, u.uid.as_deref()).await);
                }
            }
        }
    }
    out.extend(zones(config).await);
    out
}

fn state_dir(config: &Config) -> Finding {
    let dir = &config.state_dir;
    let what = format!("state directory {} is writable", dir.display());
    let r = StateDir::open(dir).and_then(|s| {
        let probe = s.path().join("check-probe");
        write_atomic(&probe, b"probe")?;
        std::fs::remove_file(&probe).map_err(crate::state::io_err(&probe))
    });
    match r {
        Ok(()) => Finding::pass(what),
        Err(e) => Finding::fail(
            what,
            format!(
                "{e}; fix: create it writable by the exporter's user, or set exporter.state_dir"
            ),
        ),
    }
}

/// Reachable, clock within RGW's skew, credentials valid.
async fn endpoint(e: &Endpoint, role: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let reach = format!("{role}: {} is reachable", e.url);
    let server_date = async {
        let client =
            http::client(e.connect_timeout, e.timeout, None, false).map_err(|x| x.to_string())?;
        let resp = client
            .get(e.url.clone())
            .send()
            .await
            .map_err(|x| http::classify(x, e.timeout).to_string())?;
        Ok::<_, String>(
            resp.headers()
                .get(reqwest::header::DATE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| httpdate::parse_http_date(v).ok()),
        )
    }
    .await;
    match server_date {
        Err(err) => {
            out.push(Finding::fail(
                reach,
                format!("{err}; fix: check the endpoint URL and that the gateway runs"),
            ));
            return out;
        }
        Ok(date) => {
            out.push(Finding::pass(reach));
            out.push(clock(role, SystemTime::now(), date));
        }
    }
    let creds = format!("{role}: access key {} is valid", e.credentials.access_key);
    let r = match S3Client::new(e) {
        Ok(c) => c.admin_get("/", &[]).await.map(|_| String::new()),
        Err(x) => Err(x),
    };
    out.push(Finding::from_result(creds, r));
    out
}

/// Compares the local clock with a server's `Date`.
pub fn clock(role: &str, local: SystemTime, server: Option<SystemTime>) -> Finding {
    let what = format!("{role}: clocks agree");
    let Some(server) = server else {
        return Finding::fail(
            what,
            "the server sent no Date header; cannot compare clocks",
        );
    };
    let (l, s) = (DateTime::<Utc>::from(local), DateTime::<Utc>::from(server));
    let diff = (l - s).num_seconds();
    let both = format!(
        "local {} vs server {} ({diff:+}s)",
        l.to_rfc3339(),
        s.to_rfc3339()
    );
    if diff.abs() >= SKEW_FAIL_SECS {
        Finding::fail(
            what,
            format!("{both}: RGW refuses signatures 15 minutes off; fix NTP"),
        )
    } else if diff.abs() > SKEW_WARN_SECS {
        Finding::fail(
            what,
            format!("{both}: drifting towards RGW's 15-minute limit; fix NTP"),
        )
    } else {
        Finding::pass(format!("{what}: {both}"))
    }
}

/// Writes and deletes a probe object.
async fn bucket_writable(s3: &S3Client, bucket: &str) -> Finding {
    let key = format!(
        ".ceph-stats-exporter-check/{}",
        Utc::now().format("%Y%m%dT%H%M%S%.6fZ")
    );
    let what = format!("bucket {bucket}: a probe object can be written and deleted");
    let r = async {
        s3.put_object(bucket, &key, &b"probe".to_vec().into(), "text/plain", &[])
            .await?;
        s3.delete_object(bucket, &key).await?;
        Ok::<_, crate::s3::S3Error>(String::new())
    }
    .await;
    Finding::from_result(what, r)
}

/// The usage log can be read (the admin cap `usage=read`), with a window long past.
async fn usage_caps(e: &Endpoint, job: &str) -> Finding {
    let what = format!(
        "{job}: access key {} may read the usage log at {}",
        e.credentials.access_key, e.url
    );
    let r = match S3Client::new(e) {
        Ok(c) => {
            let q = [
                ("format", "json"),
                ("show-entries", "False"),
                ("start", "2000-01-01 00:00:00"),
                ("end", "2000-01-01 01:00:00"),
            ];
            c.admin_get("/admin/usage", &q).await.map(|_| String::new())
        }
        Err(x) => Err(x),
    };
    Finding::from_result(what, r)
}

/// Trimming is on: the usage log can be trimmed (the admin cap `usage=write`), tried on an
/// hour long past, which holds nothing to lose.
async fn trim_caps(e: &Endpoint, job: &str, uid: Option<&str>) -> Finding {
    let what = format!(
        "{job}: access key {} may trim the usage log at {} (trim_after is set)",
        e.credentials.access_key, e.url
    );
    let r = match S3Client::new(e) {
        Ok(c) => c
            .trim_usage("2000-01-01 00:00:00", "2000-01-01 01:00:00", uid)
            .await
            .map(|_| String::new()),
        Err(x) => Err(x),
    };
    Finding::from_result(what, r)
}

/// Multisite: whether the `rgw_usage` instances read every zone's usage log. The zones come
/// from the period (`GET /admin/realm/period`, admin cap `zone=read`) through the first
/// instance's gateway; a cluster without a realm (404) is single-site. Instances limited to one
/// `uid` do not count: they read part of a zone's log. A zone not read is a warning.
async fn zones(config: &Config) -> Option<Finding> {
    let usage: Vec<_> = config
        .jobs
        .iter()
        .filter_map(|j| match &j.kind {
            JobKind::RgwUsage(u) => Some((j, u)),
            JobKind::PoolDf(_) => None,
        })
        .collect();
    let (_, first) = usage.first()?;
    let what = "rgw_usage instances read every zone's usage log";
    let answer = match S3Client::new(&first.rgw) {
        Ok(c) => c.admin_get("/admin/realm/period", &[]).await,
        Err(e) => Err(e),
    };
    let period = match answer {
        Err(S3Error::Api { status: 404, .. }) => {
            return Some(Finding::pass(format!(
                "{what}: single-site ({} has no realm: one usage log)",
                first.rgw.url
            )))
        }
        Err(e) => {
            return Some(Finding::warn(
                what,
                format!("{e}; the zones were not verified"),
            ))
        }
        Ok(body) => match zones::parse(&body) {
            Ok(p) => p,
            Err(e) => {
                return Some(Finding::warn(
                    what,
                    format!("{e} (GET {}admin/realm/period)", first.rgw.url),
                ))
            }
        },
    };
    let instances: Vec<_> = usage
        .iter()
        .filter(|(_, u)| u.uid.is_none())
        .map(|(j, u)| zones::Instance {
            job: &j.name,
            endpoint: &u.rgw.url,
            zone_label: j.labels.zone.as_deref(),
        })
        .collect();
    let mut finding = zone_finding(what, &period, &zones::coverage(&period, &instances));
    let limited = usage.len() - instances.len();
    if limited > 0 && finding.level == Level::Warn {
        finding.detail += &format!(
            "\n     ({limited} instance(s) limited to one uid were not counted: they read part of \
             a zone's log)"
        );
    }
    Some(finding)
}

/// The line `check` prints for a coverage: the zones and their readers, or what is missed.
fn zone_finding(what: &str, period: &zones::Period, c: &zones::Coverage) -> Finding {
    let missed = c.missed(period);
    let mut problems: Vec<String> =
        missed
            .iter()
            .map(|(group, zone)| {
                format!(
                "zone {} of zonegroup {group} is read by no rgw_usage instance: its traffic is \
                 not archived; fix: add an instance with rgw = {{ endpoint = \"{}\" }} or zone = \
                 \"{}\"",
                zone.name,
                zone.endpoints.first().map_or("<its gateway>", String::as_str),
                zone.name
            )
            })
            .collect();
    problems.extend(c.unmatched.iter().map(|job| {
        format!(
            "instance {job} reads no zone of the period (its endpoint is none of a zone's \
             endpoints): set its zone label to the zone its gateway serves"
        )
    }));
    if problems.is_empty() {
        let read: Vec<String> = c
            .zonegroups
            .iter()
            .flat_map(|(g, zones)| {
                zones
                    .iter()
                    .map(move |(z, jobs)| format!("{g}/{z} by {}", jobs.join(", ")))
            })
            .collect();
        Finding::pass(format!("{what}: {}", read.join("; ")))
    } else {
        Finding::warn(what, problems.join("\n     "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn clock_skew_is_graded_against_rgws_limit() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert!(clock("s3", t, Some(t + Duration::from_secs(5))).ok());
        let warn = clock("s3", t, Some(t + Duration::from_secs(120)));
        assert!(!warn.ok() && warn.detail.contains("-120s"), "{warn:?}");
        let fail = clock("s3", t + Duration::from_secs(1200), Some(t));
        assert!(
            !fail.ok() && fail.detail.contains("+1200s") && fail.detail.contains("NTP"),
            "{fail:?}"
        );
        assert!(!clock("s3", t, None).ok());
    }

    #[test]
    fn a_zone_no_instance_reads_is_a_warning_naming_it_and_its_endpoint() {
        let period = zones::parse(include_bytes!(
            "../tests/fixtures/admin-realm-period-two-zones.json"
        ))
        .unwrap();
        let (a, b) = (
            url::Url::parse("http://127.0.0.1:8010").unwrap(),
            url::Url::parse("http://127.0.0.1:8011").unwrap(),
        );
        let usage_a = zones::Instance {
            job: "usage_a",
            endpoint: &a,
            zone_label: None,
        };
        let one = zone_finding("w", &period, &zones::coverage(&period, &[usage_a]));
        assert_eq!(one.level, Level::Warn, "{one:?}");
        assert!(one.ok(), "a warning does not fail check");
        assert!(
            one.detail
                .starts_with("zone zone-b of zonegroup dev-zg is read by no rgw_usage")
                && one.detail.contains("endpoint = \"http://127.0.0.1:8011\"")
                && !one.detail.contains("zone-a"),
            "{}",
            one.detail
        );
        let usage_b = zones::Instance {
            job: "usage_b",
            endpoint: &b,
            zone_label: None,
        };
        let two = zone_finding("w", &period, &zones::coverage(&period, &[usage_a, usage_b]));
        assert_eq!(
            two,
            Finding::pass("w: dev-zg/zone-b by usage_b; dev-zg/zone-a by usage_a")
        );
    }
}
