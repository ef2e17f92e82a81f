//! A snapshot: what one job collected for one fire time, before it is formatted.

use chrono::{DateTime, Utc};

use crate::osd_df::CapacityReport;
use crate::usage::UsageReport;

/// The data of a snapshot, by kind.
#[derive(Clone, Debug, PartialEq)]
pub enum SnapshotData {
    Capacity(CapacityReport),
    Usage(UsageReport),
}

/// One job's result for one scheduled fire time.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The job that collected it (`pool_df`, `rgw_usage`).
    pub job: &'static str,
    /// The scheduled fire time this snapshot stands for: it names the object.
    pub fire_time: DateTime<Utc>,
    /// When the data was actually read (metadata only: it never changes the body).
    pub collected_at: DateTime<Utc>,
    /// The cluster's fsid, when the config names it.
    pub cluster_fsid: Option<String>,
    pub data: SnapshotData,
}
