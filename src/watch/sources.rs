//! Where `watch` reads: pool stats through the configured Ceph source, the mgr prometheus
//! module's RGW counters, and the RGW usage log of the current hour through the admin API. Each
//! source runs as a task of its own, polling every interval and sending what it got, so a slow
//! or failing source never holds up the others.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use url::Url;

use super::gateways::{self, Gateway, GatewayError};
use super::pools::{self, PoolRates, PoolStatsError};
use super::usage::{self, Bucket, Counters, UsageTotals};
use crate::ceph_source::{self, CephSource, CephSourceError};
use crate::config::{Config, JobKind};
use crate::http;
use crate::jobs::rgw_usage::{self, Settings};
use crate::jobs::JobError;
use crate::s3::{S3Client, S3Error};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceId {
    Pools,
    Gateways,
    Usage,
}

/// What a source read.
pub enum Data {
    Pools(Vec<(Box<str>, PoolRates)>),
    Gateways(Vec<(Gateway, [f64; 4])>),
    Usage {
        users: Vec<(std::sync::Arc<str>, Counters)>,
        buckets: Vec<(Bucket, Counters)>,
    },
}

/// One poll of a source.
pub struct Update {
    pub source: SourceId,
    /// When the answer came.
    pub at: Instant,
    pub time: DateTime<Utc>,
    pub result: Result<Data, WatchError>,
}

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error("no {0} job in the config")]
    NotConfigured(&'static str),
    #[error(transparent)]
    Ceph(#[from] CephSourceError),
    #[error("answer of {from}: {source}")]
    PoolStats {
        from: String,
        source: PoolStatsError,
    },
    #[error("{url}: {source}")]
    Gateways { url: String, source: GatewayError },
    #[error(transparent)]
    Admin(#[from] S3Error),
    #[error(transparent)]
    Usage(#[from] JobError),
}

/// A source and what it keeps between polls.
pub enum Source {
    Pools(Option<CephSource>),
    Gateways { url: Url, timeout: Duration },
    Usage(Option<Box<UsageSource>>),
}

pub struct UsageSource {
    admin: S3Client,
    settings: Settings,
    /// RGW's usage log write interval.
    lag: Duration,
    /// How long into an hour the previous one is still read.
    grace: Duration,
    totals: UsageTotals,
}

impl Source {
    /// The three sources of a config: the first `pool_df` instance's Ceph source, the
    /// prometheus URL, the first `rgw_usage` instance's gateway. `usage_lag` is RGW's usage log
    /// write interval.
    pub fn all(
        config: &Config,
        prometheus: Url,
        interval: Duration,
        usage_lag: Duration,
    ) -> Result<[Source; 3], WatchError> {
        let ceph = config.jobs.iter().find_map(|j| match &j.kind {
            JobKind::PoolDf(s) => Some(s.source.clone()),
            _ => None,
        });
        let usage = config.jobs.iter().find_map(|j| match &j.kind {
            JobKind::RgwUsage(s) => Some(s),
            _ => None,
        });
        let usage = match usage {
            None => None,
            Some(settings) => {
                // The next poll is the retry: a failing gateway shows its error at once.
                let mut endpoint = settings.rgw.clone();
                endpoint.retry.retries = 0;
                let settings = Settings {
                    show_entries: true,
                    ..settings.clone()
                };
                Some(Box::new(UsageSource {
                    admin: S3Client::new(&endpoint)?,
                    settings,
                    lag: usage_lag,
                    // Two write intervals and a poll: the previous hour's last write is in.
                    grace: usage_lag * 2 + interval,
                    totals: UsageTotals::default(),
                }))
            }
        };
        let timeout = interval.max(Duration::from_secs(5));
        Ok([
            Source::Pools(ceph),
            Source::Gateways {
                url: prometheus,
                timeout,
            },
            Source::Usage(usage),
        ])
    }

    pub fn id(&self) -> SourceId {
        match self {
            Source::Pools(_) => SourceId::Pools,
            Source::Gateways { .. } => SourceId::Gateways,
            Source::Usage(_) => SourceId::Usage,
        }
    }

    /// What the source's panes show, from where.
    pub fn describe(&self) -> String {
        match self {
            Source::Pools(None) | Source::Usage(None) => String::new(),
            Source::Pools(Some(ceph)) => {
                let from = match ceph {
                    CephSource::Command { binary, .. } => {
                        format!("`{} osd pool stats`", binary.display())
                    }
                    other => other.describe(),
                };
                format!("client I/O and recovery per pool as the mgr computes them, from {from}")
            }
            Source::Gateways { url, .. } => format!(
                "RGW counters from {}; the mgr refreshes them every 15 s",
                http::shown(url)
            ),
            Source::Usage(Some(u)) => format!(
                "RGW usage log of this hour from {}; RGW writes it every {} \
                 (rgw_usage_log_tick_interval): figures lag by up to that",
                http::shown(u.admin.endpoint()),
                humantime::format_duration(u.lag)
            ),
        }
    }

    async fn poll(&mut self) -> Result<Data, WatchError> {
        match self {
            Source::Pools(None) => Err(WatchError::NotConfigured("pool_df")),
            Source::Pools(Some(ceph)) => {
                let json = ceph_source::fetch_pool_stats(ceph).await?;
                let pools = pools::parse(&json).map_err(|source| WatchError::PoolStats {
                    from: ceph.describe(),
                    source,
                })?;
                Ok(Data::Pools(pools))
            }
            Source::Gateways { url, timeout } => {
                let body = ceph_source::get(url, None, *timeout).await?;
                let text = String::from_utf8_lossy(&body);
                let gateways = gateways::parse(&text).map_err(|source| WatchError::Gateways {
                    url: http::shown(url),
                    source,
                })?;
                Ok(Data::Gateways(gateways))
            }
            Source::Usage(None) => Err(WatchError::NotConfigured("rgw_usage")),
            Source::Usage(Some(u)) => {
                let mut hours = Vec::new();
                for window in usage::hours_to_read(Utc::now(), u.grace) {
                    let report = rgw_usage::read_window(&u.admin, &u.settings, window).await?;
                    hours.push((window.start, usage::hour_figures(report)));
                }
                let (users, buckets) = u.totals.update(hours);
                Ok(Data::Usage { users, buckets })
            }
        }
    }
}

/// Polls `source` every `interval` (`count` times, or until the receiver is gone), sending each
/// answer or failure.
pub fn spawn(
    mut source: Source,
    interval: Duration,
    count: Option<u64>,
    tx: mpsc::Sender<Update>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        // A poll slower than the interval delays the next one instead of piling up.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut polls = 0;
        while count.is_none_or(|n| polls < n) {
            ticks.tick().await;
            let result = source.poll().await;
            polls += 1;
            let update = Update {
                source: source.id(),
                at: Instant::now(),
                time: Utc::now(),
                result,
            };
            if tx.send(update).await.is_err() {
                break;
            }
        }
    })
}
