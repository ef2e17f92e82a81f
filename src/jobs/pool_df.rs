//! `pool_df`: cluster capacity per CRUSH root, from `osd df tree`.

use async_trait::async_trait;
use chrono::Utc;

use super::{Fire, Job, JobError};
use crate::ceph_source;
use crate::ceph_source::CephSource;
use crate::osd_df;
use crate::snapshot::{Labels, Snapshot, SnapshotData};

/// How much of the CRUSH tree a capacity snapshot keeps. Roots are always there.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Detail {
    #[default]
    Roots,
    Hosts,
    Osds,
}

/// What a `pool_df` instance is configured with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub detail: Detail,
    pub source: CephSource,
}

pub struct PoolDf {
    pub name: std::sync::Arc<str>,
    pub labels: Labels,
    pub settings: Settings,
    pub cluster_fsid: Option<String>,
}

#[async_trait]
impl Job for PoolDf {
    fn name(&self) -> &str {
        &self.name
    }

    async fn collect(&self, fire: Fire) -> Result<Snapshot, JobError> {
        let Settings { detail, source } = &self.settings;
        let json = ceph_source::fetch_osd_df_tree(source).await?;
        let collected_at = Utc::now();
        let mut report = osd_df::parse(&json).map_err(|e| JobError::OsdDf {
            from: source.describe(),
            source: e,
        })?;
        if *detail == Detail::Roots {
            report.hosts.clear();
        }
        if *detail != Detail::Osds {
            report.osds.clear();
        }
        Ok(Snapshot {
            job: self.name.clone(),
            labels: self.labels.clone(),
            fire_time: fire.time,
            collected_at,
            cluster_fsid: self.cluster_fsid.clone(),
            data: SnapshotData::Capacity(report),
        })
    }
}
