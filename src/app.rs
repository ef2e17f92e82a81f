//! Assembling the configured jobs and the sink from a [`Config`].

use std::sync::Arc;

use crate::config::Config;
use crate::jobs::pool_df::PoolDf;
use crate::jobs::rgw_usage::RgwUsage;
use crate::pipeline::JobSpec;
use crate::s3client::{S3Client, S3Error};
use crate::sink::{DryRunSink, S3Sink, Sink};

/// The enabled jobs, in a fixed order (capacity first).
pub fn jobs(config: &Config) -> Result<Vec<JobSpec>, S3Error> {
    let mut specs = Vec::new();
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
        });
    }
    if let Some(u) = &config.rgw_usage {
        specs.push(JobSpec {
            job: Arc::new(RgwUsage {
                admin: S3Client::new(&u.rgw)?,
                window: u.window,
                time_zone: config.time_zone,
                show_entries: u.show_entries,
                uid: u.uid.clone(),
                cluster_fsid: config.cluster_fsid.clone(),
            }),
            schedule: u.common.schedule.clone(),
            key: u.common.key.clone(),
            format: u.common.format,
        });
    }
    Ok(specs)
}

/// Where objects go: the configured bucket, or standard output for a dry run.
pub fn sink(config: &Config, dry_run: bool) -> Result<Arc<dyn Sink>, S3Error> {
    if dry_run {
        return Ok(Arc::new(DryRunSink));
    }
    Ok(Arc::new(S3Sink {
        client: S3Client::new(&config.s3)?,
        bucket: config.bucket.clone(),
    }))
}
