//! Assembling the configured jobs, the delivery path and the state from a [`Config`].

use std::sync::Arc;

use prometheus_client::metrics::counter::Counter;

use crate::config::{Config, JobKind};
use crate::delivery::Delivery;
use crate::jobs::pool_df::PoolDf;
use crate::jobs::rgw_usage::RgwUsage;
use crate::jobs::Job;
use crate::pipeline::{Archive, Context, JobSpec};
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
    #[error("--job {name}: no such enabled job (enabled: {})", enabled.join(", "))]
    UnknownJob { name: String, enabled: Vec<String> },
    #[error("no job is enabled")]
    NoJobs,
}

/// Everything a run needs, built from a config.
pub struct Assembly {
    /// The enabled job instances, in the config's order (capacity first).
    pub specs: Vec<JobSpec>,
    pub context: Context,
    /// Each S3 client's retry counter, by client (`s3`, or `rgw_admin` with its job), for
    /// metrics.
    pub retries: Retries,
}

/// Retry counters: the client, the job it serves (admin clients), the counter.
pub type Retries = Vec<(&'static str, Option<String>, Counter)>;

/// Builds the `wanted` jobs (every enabled one when empty), the delivery path and the state; a
/// dry run prints instead of uploading and remembers nothing.
pub fn assemble(config: &Config, dry_run: bool, wanted: &[String]) -> Result<Assembly, AppError> {
    let enabled = || config.jobs.iter().map(|j| j.name.to_string()).collect();
    if let Some(name) = wanted.iter().find(|w| config.job(w).is_none()) {
        return Err(AppError::UnknownJob {
            name: name.clone(),
            enabled: enabled(),
        });
    }
    let (specs, mut retries) = jobs(config, wanted)?;
    if specs.is_empty() {
        return Err(AppError::NoJobs);
    }
    let (context, sink_retries) = context(config, dry_run)?;
    retries.extend(sink_retries);
    Ok(Assembly {
        specs,
        context,
        retries,
    })
}

fn jobs(config: &Config, wanted: &[String]) -> Result<(Vec<JobSpec>, Retries), S3Error> {
    let mut specs = Vec::new();
    let mut retries = Vec::new();
    let selected = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    for j in config.jobs.iter().filter(|j| selected(&j.name)) {
        let (job, catch_up_limit): (Arc<dyn Job>, usize) = match &j.kind {
            JobKind::PoolDf(settings) => {
                let job = PoolDf {
                    name: j.name.clone(),
                    labels: j.labels.clone(),
                    settings: settings.clone(),
                    cluster_fsid: config.cluster_fsid.clone(),
                };
                (Arc::new(job), 0)
            }
            JobKind::RgwUsage(settings) => {
                let admin = S3Client::new(&settings.rgw)?;
                retries.push(("rgw_admin", Some(j.name.to_string()), admin.retry_counter()));
                let job = RgwUsage {
                    name: j.name.clone(),
                    labels: j.labels.clone(),
                    admin,
                    settings: settings.clone(),
                    cluster_fsid: config.cluster_fsid.clone(),
                };
                (Arc::new(job), settings.catch_up_limit)
            }
        };
        specs.push(JobSpec {
            job,
            schedule: j.common.schedule.clone(),
            key: j.common.key.clone(),
            format: j.common.format,
            compression: j.common.compression,
            catch_up_limit,
        });
    }
    Ok((specs, retries))
}

/// Where objects go and what is remembered: the bucket with the spool and job state in the
/// state directory, or, for a dry run, standard output and nothing remembered.
fn context(config: &Config, dry_run: bool) -> Result<(Context, Retries), AppError> {
    let trims = config.jobs.iter().any(|j| match &j.kind {
        JobKind::RgwUsage(u) => u.trim.is_some(),
        JobKind::PoolDf(_) => false,
    });
    // Trimming reads the archive back; a dry run reads the job state to say what it would trim.
    let archive = |dry_run: bool| -> Result<Option<Archive>, AppError> {
        Ok(trims
            .then(|| {
                S3Client::new(&config.s3).map(|client| Archive {
                    client,
                    bucket: config.bucket.clone(),
                    dry_run_state: dry_run.then(|| StateDir::existing(&config.state_dir)),
                })
            })
            .transpose()?)
    };
    if dry_run {
        let cx = Context {
            delivery: Delivery::new(Arc::new(DryRunSink), None),
            state: None,
            archive: archive(true)?,
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
    let retries = vec![("s3", None, sink.client.retry_counter())];
    let cx = Context {
        delivery: Delivery::new(Arc::new(sink), Some(spool)),
        state: Some(state),
        archive: archive(false)?,
    };
    Ok((cx, retries))
}
