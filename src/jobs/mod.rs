//! Jobs: each collects one kind of snapshot. One file per job, one small trait between them and
//! the rest of the exporter, which knows nothing of how a job gets its numbers.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::ceph_source::CephSourceError;
use crate::osd_df::OsdDfError;
use crate::s3::S3Error;
use crate::snapshot::Snapshot;
use crate::trim::TrimSettings;
use crate::usage::UsageError;
use crate::window::{Window, WindowError};

pub mod pool_df;
pub mod rgw_usage;

/// One firing of a job: the scheduled time it stands for, and an explicit usage window when
/// the operator gave one (`--from`/`--to`).
#[derive(Clone, Copy, Debug)]
pub struct Fire {
    pub time: DateTime<Utc>,
    pub window: Option<Window>,
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    CephSource(#[from] CephSourceError),
    #[error("answer of {from}: {source}")]
    OsdDf { from: String, source: OsdDfError },
    #[error(transparent)]
    Rgw(#[from] S3Error),
    #[error("answer of {from}: {source}")]
    Usage { from: String, source: UsageError },
    #[error("usage window: {0}")]
    Window(#[from] WindowError),
    #[error("the parsing task failed: {0}")]
    Task(String),
}

/// Something that turns a fire time into a snapshot.
#[async_trait]
pub trait Job: Send + Sync {
    /// The instance's name, as in the config (`[jobs.NAME]`) and in `--job NAME`.
    fn name(&self) -> &str;

    async fn collect(&self, fire: Fire) -> Result<Snapshot, JobError>;

    /// Jobs that read a window of history say which; such windows can still be fetched later,
    /// so missed ones are caught up. `None` for jobs that read the present.
    fn windows(&self) -> Option<&dyn Windowed> {
        None
    }

    /// Jobs whose source keeps history until told to forget it (the usage log), when the config
    /// asks them to trim what is archived. `None` for every other job.
    fn trimmer(&self) -> Option<(TrimSettings, &dyn Trimmer)> {
        None
    }
}

/// A job that can trim the history it reads (see [`crate::trim`]).
#[async_trait]
pub trait Trimmer: Send + Sync {
    /// Forgets exactly `window` in the source.
    async fn trim(&self, window: Window) -> Result<(), JobError>;
}

/// A job whose fires read windows of history.
pub trait Windowed {
    /// The window a fire at `fire_time` reads.
    fn window_at(&self, fire_time: DateTime<Utc>) -> Result<Window, JobError>;
}
