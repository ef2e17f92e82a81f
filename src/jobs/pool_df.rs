//! `pool_df`: cluster capacity per CRUSH root, from `osd df tree`.

use async_trait::async_trait;
use chrono::Utc;

use super::{Fire, Job, JobError};
use crate::ceph_source;
use crate::config::{CephSource, Detail};
use crate::osd_df;
use crate::snapshot::{Snapshot, SnapshotData};

pub struct PoolDf {
    pub source: CephSource,
    pub detail: Detail,
    pub cluster_fsid: Option<String>,
}

#[async_trait]
impl Job for PoolDf {
    fn name(&self) -> &'static str {
        "pool_df"
    }

    async fn collect(&self, fire: Fire) -> Result<Snapshot, JobError> {
        let json = ceph_source::fetch_osd_df_tree(&self.source).await?;
        let collected_at = Utc::now();
        let mut report = osd_df::parse(&json).map_err(|source| JobError::OsdDf {
            from: self.source.describe(),
            source,
        })?;
        if self.detail == Detail::Roots {
            report.hosts.clear();
        }
        if self.detail != Detail::Osds {
            report.osds.clear();
        }
        Ok(Snapshot {
            job: self.name(),
            fire_time: fire.time,
            collected_at,
            cluster_fsid: self.cluster_fsid.clone(),
            data: SnapshotData::Capacity(report),
        })
    }
}
