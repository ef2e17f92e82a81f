//! `rgw_usage`: the RGW usage log of the last complete window before the fire time.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{Fire, Job, JobError, Trimmer, Windowed};
use crate::chunks;
use crate::s3::{Endpoint, S3Client};
use crate::snapshot::{Labels, Snapshot, SnapshotData};
use crate::trim::TrimSettings;
use crate::usage::{self, UsageReport};
use crate::window::{Window, WindowLength};

/// What an `rgw_usage` instance is configured with.
#[derive(Clone, Debug)]
pub struct Settings {
    pub window: WindowLength,
    /// Where `1d` windows start and end (`exporter.time_zone`).
    pub time_zone: Tz,
    /// How long after a window ends it is first read: RGW flushes its usage log late.
    pub settle: Duration,
    /// At most this many missed windows are fetched per fire.
    pub catch_up_limit: usize,
    pub show_entries: bool,
    /// The most distinct buckets one answer may hold (memory).
    pub max_buckets: usize,
    pub uid: Option<String>,
    /// The admin API of the zone this instance reads.
    pub rgw: Endpoint,
    /// Trimming the usage log of windows verified archived (`trim_after`); off when `None`.
    pub trim: Option<TrimSettings>,
}

pub struct RgwUsage {
    pub name: std::sync::Arc<str>,
    pub labels: Labels,
    pub admin: S3Client,
    pub settings: Settings,
    pub cluster_fsid: Option<String>,
}

impl Windowed for RgwUsage {
    /// The last window complete (and settled) at `fire_time`.
    fn window_at(&self, fire_time: DateTime<Utc>) -> Result<Window, JobError> {
        let s = &self.settings;
        Ok(Window::last_complete(
            fire_time - s.settle,
            s.window,
            s.time_zone,
        )?)
    }
}

/// Chunks of the answer in flight between the transport and the parser (each up to a few
/// hundred KiB, as the transport reads them).
const CHUNKS_IN_FLIGHT: usize = 16;

/// Reads the usage log of `window` through `admin` as `settings` say (entries, one user, the
/// bucket limit). The answer can run to hundreds of megabytes on a large cluster: it is parsed
/// as it arrives, in bounded memory, on a blocking thread fed chunk by chunk. A failure of the
/// transport while the answer streams fails the read (the run is tried again by catch-up); it
/// is reported rather than the parse error it causes.
pub async fn read_window(
    admin: &S3Client,
    settings: &Settings,
    window: Window,
) -> Result<UsageReport, JobError> {
    let start = Window::query_bound(window.start);
    let end = Window::query_bound(window.end);
    let mut query = vec![
        ("format", "json"),
        ("show-entries", flag(settings.show_entries)),
        ("show-summary", "True"),
        ("start", start.as_str()),
        ("end", end.as_str()),
    ];
    if let Some(uid) = &settings.uid {
        query.push(("uid", uid));
    }
    let answer = admin.admin_get_stream("/admin/usage", &query).await?;
    let from = format!("{}admin/usage", admin.endpoint());
    let (to_parser, reader) = chunks::channel(CHUNKS_IN_FLIGHT, answer.limit);
    let (with_entries, max_buckets) = (settings.show_entries, settings.max_buckets);
    let parse = tokio::task::spawn_blocking(move || {
        usage::parse_reader(reader, window, with_entries, max_buckets)
    });
    let received = answer.pump(to_parser).await;
    let parsed = parse.await.map_err(|e| JobError::Task(e.to_string()))?;
    received?;
    parsed.map_err(|source| JobError::Usage { from, source })
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
    fn name(&self) -> &str {
        &self.name
    }

    async fn collect(&self, fire: Fire) -> Result<Snapshot, JobError> {
        let window = match fire.window {
            Some(w) => w,
            None => self.window_at(fire.time)?,
        };
        let report = read_window(&self.admin, &self.settings, window).await?;
        let collected_at = Utc::now();
        Ok(Snapshot {
            job: self.name.clone(),
            labels: self.labels.clone(),
            fire_time: fire.time,
            collected_at,
            cluster_fsid: self.cluster_fsid.clone(),
            data: SnapshotData::Usage(report),
        })
    }

    fn windows(&self) -> Option<&dyn Windowed> {
        Some(self)
    }

    fn trimmer(&self) -> Option<(TrimSettings, &dyn Trimmer)> {
        Some((self.settings.trim?, self as &dyn Trimmer))
    }
}

#[async_trait]
impl Trimmer for RgwUsage {
    /// `DELETE /admin/usage` of the window's hours, of the instance's `uid` when it has one.
    async fn trim(&self, window: Window) -> Result<(), JobError> {
        let (start, end) = (
            Window::query_bound(window.start),
            Window::query_bound(window.end),
        );
        let uid = self.settings.uid.as_deref();
        Ok(self.admin.trim_usage(&start, &end, uid).await?)
    }
}
