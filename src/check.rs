//! `ceph-stats-exporter check`: everything an operator gets wrong, verified against the real
//! services, one line each, with what to do when it fails.

use std::time::SystemTime;

use chrono::{DateTime, Utc};

use crate::ceph_source;
use crate::config::{Config, JobKind};
use crate::http;
use crate::osd_df;
use crate::s3::Endpoint;
use crate::s3::S3Client;
use crate::state::{write_atomic, StateDir};

/// RGW refuses signatures more than 15 minutes off; warn well before.
const SKEW_WARN_SECS: i64 = 60;
const SKEW_FAIL_SECS: i64 = 15 * 60;

/// One verified thing.
#[derive(Debug, PartialEq, Eq)]
pub struct Finding {
    pub ok: bool,
    pub what: String,
    /// On failure, the error and what to do.
    pub detail: String,
}

impl Finding {
    fn pass(what: impl Into<String>) -> Finding {
        Finding {
            ok: true,
            what: what.into(),
            detail: String::new(),
        }
    }

    fn fail(what: impl Into<String>, detail: impl Into<String>) -> Finding {
        Finding {
            ok: false,
            what: what.into(),
            detail: detail.into(),
        }
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
            }
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn clock_skew_is_graded_against_rgws_limit() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        assert!(clock("s3", t, Some(t + Duration::from_secs(5))).ok);
        let warn = clock("s3", t, Some(t + Duration::from_secs(120)));
        assert!(!warn.ok && warn.detail.contains("-120s"), "{warn:?}");
        let fail = clock("s3", t + Duration::from_secs(1200), Some(t));
        assert!(
            !fail.ok && fail.detail.contains("+1200s") && fail.detail.contains("NTP"),
            "{fail:?}"
        );
        assert!(!clock("s3", t, None).ok);
    }
}
