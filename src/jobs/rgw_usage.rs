//! `rgw_usage`: the RGW usage log of the last complete window before the fire time.

use async_trait::async_trait;
use chrono::Utc;
use chrono_tz::Tz;

use super::{Fire, Job, JobError};
use crate::s3client::S3Client;
use crate::snapshot::{Snapshot, SnapshotData};
use crate::usage;
use crate::window::{Window, WindowLength};

pub struct RgwUsage {
    pub admin: S3Client,
    pub window: WindowLength,
    pub time_zone: Tz,
    pub show_entries: bool,
    pub uid: Option<String>,
    pub cluster_fsid: Option<String>,
}

impl RgwUsage {
    /// The window a fire asks for: the explicit one, or the last complete one before it.
    pub fn window_for(&self, fire: &Fire) -> Result<Window, JobError> {
        match fire.window {
            Some(w) => Ok(w),
            None => Ok(Window::last_complete(
                fire.time,
                self.window,
                self.time_zone,
            )?),
        }
    }
}

/// RGW's boolean spelling in query strings.
fn flag(b: bool) -> &'static str {
    if b {
        "True"
    } else {
        "False"
    }
}

#[async_trait]
impl Job for RgwUsage {
    fn name(&self) -> &'static str {
        "rgw_usage"
    }

    async fn collect(&self, fire: Fire) -> Result<Snapshot, JobError> {
        let window = self.window_for(&fire)?;
        let start = Window::query_bound(window.start);
        let end = Window::query_bound(window.end);
        let mut query = vec![
            ("format", "json"),
            ("show-entries", flag(self.show_entries)),
            ("show-summary", "True"),
            ("start", start.as_str()),
            ("end", end.as_str()),
        ];
        if let Some(uid) = &self.uid {
            query.push(("uid", uid));
        }
        let body = self.admin.admin_get("/admin/usage", &query).await?;
        let collected_at = Utc::now();
        let report =
            usage::parse(&body, window, self.show_entries).map_err(|source| JobError::Usage {
                from: format!("{}admin/usage", self.admin.endpoint()),
                source,
            })?;
        Ok(Snapshot {
            job: self.name(),
            fire_time: fire.time,
            collected_at,
            cluster_fsid: self.cluster_fsid.clone(),
            data: SnapshotData::Usage(report),
        })
    }
}
