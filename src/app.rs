//! Assembling the configured jobs, the delivery path and the state from a [`Config`].

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;

use crate::config::Config;
use crate::delivery::Delivery;
use crate::jobs::pool_df::PoolDf;
use crate::jobs::rgw_usage::RgwUsage;
use crate::pipeline::{Context, JobSpec};
use crate::s3::{S3Client, S3Error};
use crate::sink::{DryRunSink, S3Sink};
use crate::spool::{Spool, SpoolError};
use crate::state::{StateDir, StateError};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    S3(#[from] S3Error),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

/// Everything a run needs, built from a config.
pub struct Assembly {
    /// The enabled jobs, in a fixed order (capacity first).
    pub specs: Vec<JobSpec>,
    pub context: Context,
    /// Each S3 client's retry counter, by role, for metrics.
    pub retries: Vec<(&'static str, Counter)>,
}

/// Builds the jobs, the delivery path and the state; a dry run prints instead of uploading and
/// remembers nothing.
pub fn assemble(config: &Config, dry_run: bool) -> Result<Assembly, AppError> {
    let (specs, mut retries) = jobs(config)?;
    let (context, sink_retries) = context(config, dry_run)?;
    retries.extend(sink_retries);
    Ok(Assembly {
        specs,
        context,
        retries,
    })
}

type Retries = Vec<(&'static str, Counter)>;

fn jobs(config: &Config) -> Result<(Vec<JobSpec>, Retries), S3Error> {
    let mut specs = Vec::new();
    let mut retries = Vec::new();
    if let Some(p) = &config.pool_df {
        specs.push(JobSpec {
            job: Arc::new(PoolDf {
                source: p.source.clone(),
                detail: p.detail,
                cluster_fsid: config.cluster_fsid.clone(),
            }),
            schedule: p.common.schedule.clone(),
            key: p.common.key.clone(),
            format: p.common.format,
            catch_up_limit: 0,
        });
    }
    if let Some(u) = &config.rgw_usage {
        let admin = S3Client::new(&u.rgw)?;
        retries.push(("rgw_admin", admin.retry_counter()));
        specs.push(JobSpec {
            job: Arc::new(RgwUsage {
                admin,
                window: u.window,
                time_zone: config.time_zone,
                settle: u.settle,
                show_entries: u.show_entries,
                max_buckets: u.max_buckets,
                uid: u.uid.clone(),
                cluster_fsid: config.cluster_fsid.clone(),
            }),
            schedule: u.common.schedule.clone(),
            key: u.common.key.clone(),
            format: u.common.format,
            catch_up_limit: u.catch_up_limit,
        });
    }
    Ok((specs, retries))
}

/// Where objects go and what is remembered: the bucket with the spool and job state in the
/// state directory, or, for a dry run, standard output and nothing remembered.
fn context(config: &Config, dry_run: bool) -> Result<(Context, Retries), AppError> {
    if dry_run {
        let cx = Context {
            delivery: Delivery::new(Arc::new(DryRunSink), None),
            state: None,
        };
        return Ok((cx, Vec::new()));
    }
    let state = StateDir::open(&config.state_dir)?;
    let spool = Spool::open(&state.path().join("spool"), config.spool_max_bytes)?;
    let sink = S3Sink {
        client: S3Client::new(&config.s3)?,
        bucket: config.bucket.clone(),
        multipart_threshold: config.multipart_threshold,
        part_size: config.multipart_part_size,
    };
    let retries = vec![("s3", sink.client.retry_counter())];
    let cx = Context {
        delivery: Delivery::new(Arc::new(sink), Some(spool)),
        state: Some(state),
    };
    Ok((cx, retries))
}
