//! One run of one job: collect, format, name, deliver. The scheduler and `--once` both call
//! [`run`]; nothing here knows when or why it was called.

use std::sync::Arc;

use crate::format::{self, Format};
use crate::jobs::{Fire, Job, JobError};
use crate::keys::KeyTemplate;
use crate::sink::{Object, Sink, SinkError};
use crate::snapshot::{Snapshot, SnapshotData};

/// A configured job: what it collects and how its objects are named and formatted.
#[derive(Clone)]
pub struct JobSpec {
    pub job: Arc<dyn Job>,
    pub schedule: crate::schedule::Schedule,
    pub key: KeyTemplate,
    pub format: Format,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("collecting: {0}")]
    Collect(#[from] JobError),
    #[error("storing object {key}: {source}")]
    Deliver { key: String, source: SinkError },
}

/// Turns a snapshot into the object that stores it.
pub fn to_object(snapshot: &Snapshot, key: &KeyTemplate, format: Format) -> Object {
    let mut metadata = vec![
        ("job".to_string(), snapshot.job.to_string()),
        ("fire-time".to_string(), snapshot.fire_time.to_rfc3339()),
        (
            "collected-at".to_string(),
            snapshot.collected_at.to_rfc3339(),
        ),
        (
            "exporter-version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        ),
    ];
    if let SnapshotData::Usage(u) = &snapshot.data {
        metadata.push(("window-start".into(), u.window.start.to_rfc3339()));
        metadata.push(("window-end".into(), u.window.end.to_rfc3339()));
    }
    Object {
        key: key.render(snapshot.fire_time),
        body: format::render(snapshot, format),
        content_type: format.content_type(),
        metadata,
    }
}

/// Collects and delivers one snapshot; returns the key written.
pub async fn run(spec: &JobSpec, fire: Fire, sink: &dyn Sink) -> Result<String, RunError> {
    let snapshot = spec.job.collect(fire).await?;
    let object = to_object(&snapshot, &spec.key, spec.format);
    sink.put(&object)
        .await
        .map_err(|source| RunError::Deliver {
            key: object.key.clone(),
            source,
        })?;
    Ok(object.key)
}
