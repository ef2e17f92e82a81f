//! What the daemon tells Prometheus (`/metrics`) and a health checker (`/healthz`).
//!
//! Runs record their outcome here; spool gauges and request retries are read when scraped.
//! Health is a pure function of the last success of each job, its period and the time: a job
//! that has not succeeded within `unhealthy_after` periods (counted from start until its first
//! success) makes the daemon unhealthy.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::pipeline::Outcome;
use crate::spool::Depth;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabel {
    job: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    job: String,
    reason: String,
}

/// One job as health sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobHealth {
    /// The longest gap between two fires of its schedule.
    pub period: Duration,
    pub last_success: Option<DateTime<Utc>>,
}

pub struct Metrics {
    registry: Registry,
    runs: Family<JobLabel, Counter>,
    failures: Family<FailureLabels, Counter>,
    last_success: Family<JobLabel, Gauge>,
    duration: Family<JobLabel, Histogram>,
    stored: Family<JobLabel, Counter>,
    stored_bytes: Family<JobLabel, Counter>,
    spooled: Family<JobLabel, Counter>,
    missed: Family<JobLabel, Counter>,
    trimmed: Family<JobLabel, Counter>,
    trim_refused: Family<FailureLabels, Counter>,
    spool_objects: Gauge,
    spool_bytes: Gauge,
    spool_oldest_age: Gauge,
    started: DateTime<Utc>,
    health: Mutex<BTreeMap<String, JobHealth>>,
}

impl Metrics {
    /// Metrics for these jobs (name, period); `retries` are the request clients' counters.
    pub fn new(jobs: &[(&str, Duration)], retries: &[(&str, Option<String>, Counter)]) -> Metrics {
        let mut registry = Registry::with_prefix("ceph_stats_exporter");
        let m = Metrics {
            runs: Family::default(),
            failures: Family::default(),
            last_success: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new([0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0])
            }),
            stored: Family::default(),
            stored_bytes: Family::default(),
            spooled: Family::default(),
            missed: Family::default(),
            trimmed: Family::default(),
            trim_refused: Family::default(),
            spool_objects: Gauge::default(),
            spool_bytes: Gauge::default(),
            spool_oldest_age: Gauge::default(),
            started: Utc::now(),
            health: Mutex::new(
                jobs.iter()
                    .map(|(name, period)| {
                        let h = JobHealth {
                            period: *period,
                            last_success: None,
                        };
                        (name.to_string(), h)
                    })
                    .collect(),
            ),
            registry: Registry::default(),
        };
        registry.register("runs", "Fires run, per job", m.runs.clone());
        registry.register(
            "run_failures",
            "Fires that did not store everything, per job and reason",
            m.failures.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "Unix time of the last fire that stored everything",
            m.last_success.clone(),
        );
        registry.register(
            "run_duration_seconds",
            "Time a fire took",
            m.duration.clone(),
        );
        registry.register(
            "objects_stored",
            "Objects uploaded by fires",
            m.stored.clone(),
        );
        registry.register(
            "stored_bytes",
            "Bytes of the objects uploaded by fires",
            m.stored_bytes.clone(),
        );
        registry.register(
            "objects_spooled",
            "Objects that went to the spool instead of S3",
            m.spooled.clone(),
        );
        registry.register(
            "missed_fires",
            "Scheduled fires that never ran (exporter down or busy)",
            m.missed.clone(),
        );
        registry.register(
            "usage_windows_trimmed",
            "Usage windows whose log was trimmed from RGW once verified archived",
            m.trimmed.clone(),
        );
        registry.register(
            "usage_trim_refused",
            "Usage windows trimming considered and did not trim, per job and reason",
            m.trim_refused.clone(),
        );
        registry.register(
            "spool_objects",
            "Objects waiting in the spool",
            m.spool_objects.clone(),
        );
        registry.register("spool_bytes", "Bytes in the spool", m.spool_bytes.clone());
        registry.register(
            "spool_oldest_age_seconds",
            "Age of the oldest object in the spool",
            m.spool_oldest_age.clone(),
        );
        for (client, job, counter) in retries {
            let mut sub = registry.sub_registry_with_label((
                std::borrow::Cow::Borrowed("client"),
                std::borrow::Cow::Owned(client.to_string()),
            ));
            if let Some(job) = job {
                sub = sub.sub_registry_with_label((
                    std::borrow::Cow::Borrowed("job"),
                    std::borrow::Cow::Owned(job.clone()),
                ));
            }
            sub.register(
                "request_retries",
                "Requests sent again after a transient failure",
                counter.clone(),
            );
        }
        Metrics { registry, ..m }
    }

    /// Records what one fire did, and how long it took.
    pub fn record(&self, job: &str, outcome: &Outcome, took: Duration, now: DateTime<Utc>) {
        let label = JobLabel { job: job.into() };
        self.runs.get_or_create(&label).inc();
        self.duration
            .get_or_create(&label)
            .observe(took.as_secs_f64());
        self.stored
            .get_or_create(&label)
            .inc_by(outcome.stored.len() as u64);
        self.stored_bytes
            .get_or_create(&label)
            .inc_by(outcome.stored_bytes);
        self.spooled
            .get_or_create(&label)
            .inc_by(outcome.spooled.len() as u64);
        self.missed
            .get_or_create(&label)
            .inc_by(u64::from(outcome.missed));
        self.trimmed.get_or_create(&label).inc_by(outcome.trimmed);
        for reason in &outcome.trim_refused {
            let labels = FailureLabels {
                job: job.into(),
                reason: reason.to_string(),
            };
            self.trim_refused.get_or_create(&labels).inc();
        }
        for reason in outcome.failure_reasons() {
            let labels = FailureLabels {
                job: job.into(),
                reason: reason.into(),
            };
            self.failures.get_or_create(&labels).inc();
        }
        if outcome.ok() {
            self.last_success.get_or_create(&label).set(now.timestamp());
            if let Some(h) = self
                .health
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_mut(job)
            {
                h.last_success = Some(now);
            }
        }
    }

    /// After a reload: the jobs now configured, keeping the last success of those that stay.
    pub fn set_jobs(&self, jobs: &[(&str, Duration)]) {
        let mut health = self.health.lock().unwrap_or_else(|e| e.into_inner());
        let kept = std::mem::take(&mut *health);
        for (name, period) in jobs {
            let last_success = kept.get(*name).and_then(|h| h.last_success);
            let h = JobHealth {
                period: *period,
                last_success,
            };
            health.insert(name.to_string(), h);
        }
    }

    /// The spool as it is now (read at scrape time).
    pub fn set_spool(&self, depth: Depth, oldest_age: Option<Duration>) {
        self.spool_objects.set(depth.objects as i64);
        self.spool_bytes.set(depth.bytes as i64);
        self.spool_oldest_age
            .set(oldest_age.map_or(0, |a| a.as_secs() as i64));
    }

    /// The metrics in the Prometheus / OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Whether every job succeeded recently enough, with a line per job.
    pub fn health(&self, now: DateTime<Utc>, unhealthy_after: u32) -> (bool, String) {
        let jobs = self
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        health(&jobs, self.started, now, unhealthy_after)
    }
}

/// Pure health rule: each job must have succeeded within `unhealthy_after` periods (measured
/// from `started` until its first success).
pub fn health(
    jobs: &BTreeMap<String, JobHealth>,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
    unhealthy_after: u32,
) -> (bool, String) {
    let mut ok = true;
    let mut report = String::new();
    for (name, h) in jobs {
        let since = h.last_success.unwrap_or(started);
        let age = (now - since).to_std().unwrap_or_default();
        let limit = h.period * unhealthy_after;
        let line = if age <= limit {
            match h.last_success {
                Some(_) => format!("{name}: ok, last success {}s ago\n", age.as_secs()),
                None => format!(
                    "{name}: ok, no success yet, started {}s ago\n",
                    age.as_secs()
                ),
            }
        } else {
            ok = false;
            format!(
                "{name}: UNHEALTHY, no success for {}s (limit {unhealthy_after} x {}s)\n",
                age.as_secs(),
                h.period.as_secs()
            )
        };
        report.push_str(&line);
    }
    (ok, report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::utc;

    #[test]
    fn a_job_is_unhealthy_after_the_multiple_of_its_period() {
        let started = utc("2026-11-22T13:00:00Z");
        let mut jobs = BTreeMap::new();
        jobs.insert(
            "pool_df".to_string(),
            JobHealth {
                period: Duration::from_secs(10),
                last_success: None,
            },
        );
        // Grace after start, then stale.
        assert!(health(&jobs, started, utc("2026-11-22T13:00:30Z"), 3).0);
        let (ok, report) = health(&jobs, started, utc("2026-11-22T13:00:31Z"), 3);
        assert!(!ok);
        assert!(
            report.contains("pool_df: UNHEALTHY, no success for 31s (limit 3 x 10s)"),
            "{report}"
        );
        jobs.get_mut("pool_df").unwrap().last_success = Some(utc("2026-11-22T13:00:25Z"));
        assert!(health(&jobs, started, utc("2026-11-22T13:00:50Z"), 3).0);
    }

    #[test]
    fn runs_are_counted_and_exposed_in_text_format() {
        let m = Metrics::new(
            &[("pool_df", Duration::from_secs(10))],
            &[("s3", None, Counter::default())],
        );
        let ok = Outcome {
            stored: vec!["k".into()],
            stored_bytes: 67,
            ..Outcome::default()
        };
        let spooled = Outcome {
            spooled: vec!["k2".into()],
            missed: 2,
            trimmed: 3,
            trim_refused: vec!["differs", "not_archived", "differs"],
            ..Outcome::default()
        };
        let now = utc("2026-11-22T13:00:10Z");
        m.record("pool_df", &ok, Duration::from_millis(300), now);
        m.record("pool_df", &spooled, Duration::from_millis(300), now);
        m.set_spool(
            Depth {
                objects: 1,
                bytes: 99,
            },
            Some(Duration::from_secs(7)),
        );
        let text = m.encode();
        for want in [
            "ceph_stats_exporter_runs_total{job=\"pool_df\"} 2",
            "ceph_stats_exporter_run_failures_total{job=\"pool_df\",reason=\"spooled\"} 1",
            "ceph_stats_exporter_last_success_timestamp_seconds{job=\"pool_df\"} 1795352410",
            "ceph_stats_exporter_missed_fires_total{job=\"pool_df\"} 2",
            "ceph_stats_exporter_stored_bytes_total{job=\"pool_df\"} 67",
            "ceph_stats_exporter_spool_objects 1",
            "ceph_stats_exporter_spool_bytes 99",
            "ceph_stats_exporter_spool_oldest_age_seconds 7",
            "ceph_stats_exporter_request_retries_total{client=\"s3\"} 0",
            "ceph_stats_exporter_run_duration_seconds_count{job=\"pool_df\"} 2",
            "ceph_stats_exporter_usage_windows_trimmed_total{job=\"pool_df\"} 3",
            "ceph_stats_exporter_usage_trim_refused_total{job=\"pool_df\",reason=\"differs\"} 2",
            "ceph_stats_exporter_usage_trim_refused_total{job=\"pool_df\",reason=\"not_archived\"} 1",
        ] {
            assert!(text.contains(want), "missing {want}\n{text}");
        }
    }
}
