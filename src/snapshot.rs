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

/// Labels of the operator's choosing for a job instance (which cluster, which zone), carried in
/// JSON bodies and object metadata so that archives of several clusters and zones stay apart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Labels {
    pub cluster: Option<String>,
    pub zone: Option<String>,
}

impl Labels {
    /// As object metadata: `cluster` and `zone`, when set.
    pub fn metadata(&self) -> impl Iterator<Item = (String, String)> + '_ {
        [("cluster", &self.cluster), ("zone", &self.zone)]
            .into_iter()
            .filter_map(|(name, value)| Some((name.to_string(), value.clone()?)))
    }
}

/// One job's result for one scheduled fire time.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The job instance that collected it (`pool_df`, `rgw_usage`, `usage_zone_a`, ...).
    pub job: std::sync::Arc<str>,
    pub labels: Labels,
    /// The scheduled fire time this snapshot stands for: it names the object.
    pub fire_time: DateTime<Utc>,
    /// When the data was actually read (metadata only: it never changes the body).
    pub collected_at: DateTime<Utc>,
    /// The cluster's fsid, when the config names it.
    pub cluster_fsid: Option<String>,
    pub data: SnapshotData,
}
