//! `rgw_usage`: the RGW usage log of the last complete window before the fire time.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{Fire, Job, JobError, Windowed};
use crate::s3::S3Client;
use crate::snapshot::{Snapshot, SnapshotData};
use crate::usage;
use crate::window::{Window, WindowLength};

pub struct RgwUsage {
    pub admin: S3Client,
    pub window: WindowLength,
    pub time_zone: Tz,
    /// How long after a window ends it is first read: RGW flushes its usage log late.
    pub settle: Duration,
    pub show_entries: bool,
    pub max_buckets: usize,
    pub uid: Option<String>,
    pub cluster_fsid: Option<String>,
}

impl Windowed for RgwUsage {
    /// The last window complete (and settled) at `fire_time`.
    fn window_at(&self, fire_time: DateTime<Utc>) -> Result<Window, JobError> {
        let settled = fire_time - self.settle;
        Ok(Window::last_complete(settled, self.window, self.time_zone)?)
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
        let window = match fire.window {
            Some(w) => w,
            None => self.window_at(fire.time)?,
        };
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
        // The answer can run to hundreds of megabytes on a large cluster: it goes to a
        // temporary file and is parsed from there as a stream, in bounded memory.
        let file = self.admin.admin_get_file("/admin/usage", &query).await?;
        let collected_at = Utc::now();
        let from = format!("{}admin/usage", self.admin.endpoint());
        let (with_entries, max_buckets) = (self.show_entries, self.max_buckets);
        let parsed = tokio::task::spawn_blocking(move || {
            usage::parse_reader(file, window, with_entries, max_buckets)
        })
        .await
        .map_err(|e| JobError::Task(e.to_string()))?;
        let report = parsed.map_err(|source| JobError::Usage { from, source })?;
        Ok(Snapshot {
            job: self.name(),
            fire_time: fire.time,
            collected_at,
            cluster_fsid: self.cluster_fsid.clone(),
            data: SnapshotData::Usage(report),
        })
    }

    fn windows(&self) -> Option<&dyn Windowed> {
        Some(self)
    }
}
